//! One module per benchmark scenario; each returns its [`Figure`]s and is
//! bounded in count and time.
//!
//! [`Figure`]: crate::report::Figure

pub mod ack;
pub mod creation;
mod disk_floor;
pub mod faults;
pub mod intake;
pub mod linear_requests;
pub mod load;
pub mod memory;
pub mod orchestration;
pub mod prompt;
pub mod runs;
mod wrk;
