pub mod resolv;
pub mod spec;
