//! Declared databases (Pigsty's `pg_databases`): the model and its validation (`model`), and the
//! plan from declared and live databases to statements (`plan`).

pub mod model;
pub mod plan;
