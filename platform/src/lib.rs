//! placeholder

pub mod telemetry;
