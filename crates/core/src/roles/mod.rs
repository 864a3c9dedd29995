//! Declarative roles, the deciding part: the role attributes, defined once (`attributes`), the
//! desired state and Pigsty parsing (`model`), SCRAM verifiers (`scram`), the catalog as plain
//! data (`live`) and one database's part of it built from its catalog rows (`snapshot`), and the
//! planner (`plan`).

pub mod attributes;
pub mod live;
pub mod model;
pub mod plan;
pub mod scram;
pub mod snapshot;
