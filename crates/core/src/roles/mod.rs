//! Declarative roles, the deciding part: the desired state and Pigsty parsing (`model`), SCRAM
//! verifiers (`scram`), the catalog as plain data (`live`), and the planner (`plan`).

pub mod live;
pub mod model;
pub mod plan;
pub mod scram;
