mod netlink;
pub mod ns;
