//! The work of each task state; `scheduler` picks which.

pub mod follow;
pub mod prepare;
pub mod resume;
pub mod start;
pub mod stop;
