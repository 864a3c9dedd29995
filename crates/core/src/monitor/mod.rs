//! Monitoring models: heap / TOAST / btree bloat estimators (`bloat`) and the wraparound
//! forecast (`forecast`) from the ring of XID samples (`samples`).

pub mod bloat;
pub mod forecast;
pub mod samples;
