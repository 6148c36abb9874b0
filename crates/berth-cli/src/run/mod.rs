pub mod hostping;
pub mod resolv;
pub mod socks5;
pub mod spec;
