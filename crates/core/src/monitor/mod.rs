//! Monitoring models: heap / TOAST / btree bloat estimators (`bloat`) and the wraparound
//! forecast from XID samples (`forecast`).

pub mod bloat;
pub mod forecast;
