//! In-memory backends: a simulated directory ([`MemorySource`]) and a
//! simulated application ([`MemoryTarget`]). The quickstart and the core's
//! tests use them; vendors can use them in their own tests. Both have fault
//! knobs so that failure paths can be exercised without a server.

mod source;
mod target;

pub use source::MemorySource;
pub use target::{Calls, Fault, MemoryTarget};
