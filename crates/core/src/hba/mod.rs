//! pg_hba.conf, the deciding part: one line (`line`: parse, print, match a connection), Pigsty's
//! rules and aliases and the renderer (`rules`), and the lint (`lint`).

pub mod line;
pub mod lint;
pub mod rules;
