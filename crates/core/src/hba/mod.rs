//! pg_hba.conf, the deciding part: one line (`line`: parse, print, match a connection), Pigsty's
//! rules and aliases and the renderer (`rules`), the lint (`lint`), and the file itself (`file`:
//! reading it back, first match, lock-out, atomic replacement), what pgops last wrote as the file
//! itself records it (`stamp`).

pub mod file;
pub mod line;
pub mod lint;
pub mod rules;
pub mod stamp;
