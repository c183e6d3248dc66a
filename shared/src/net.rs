//! Address plans: which addresses the instances get on Docker, and how an AWS VPC is cut into one
//! subnet per location. Validation and the topology both use these, so "too small" means the same everywhere.

use ipnet::Ipv4Net;
use std::net::Ipv4Addr;

/// Addresses AWS keeps in every subnet.
const AWS_RESERVED: u32 = 5;
/// The smallest subnet AWS allows.
const AWS_SMALLEST_PREFIX: u8 = 28;

/// How many addresses a network holds.
fn size(prefix: u8) -> u64 {
    1u64 << (32 - u32::from(prefix))
}

/// How many addresses a Docker network needs for `instances` containers: the network address,
/// the gateway and the broadcast address come first.
pub fn docker_needed(instances: u32) -> u64 {
    u64::from(instances) + 3
}

/// The address of each of `instances` containers (node 1 first), or `None` when the network is too small.
/// The first usable address is the gateway; nodes follow it.
pub fn docker_addresses(network: Ipv4Net, instances: u32) -> Option<Vec<Ipv4Addr>> {
    if size(network.prefix_len()) < docker_needed(instances) {
        return None;
    }
    let base = u32::from(network.network());
    Some(
        (0..instances)
            .map(|i| Ipv4Addr::from(base + 2 + i))
            .collect(),
    )
}

/// The prefix of the smallest AWS subnet that holds `instances` instances.
fn aws_prefix(instances: u32) -> u8 {
    let mut prefix = AWS_SMALLEST_PREFIX;
    while prefix > 0 && size(prefix) < u64::from(instances) + u64::from(AWS_RESERVED) {
        prefix -= 1;
    }
    prefix
}

/// One subnet for each location, the first location's at the start of the VPC, or `None` when
/// the VPC cannot hold them.
pub fn aws_subnets(network: Ipv4Net, per_location: [u32; 2]) -> Option<[Ipv4Net; 2]> {
    let prefixes = per_location.map(aws_prefix);
    let start = u64::from(u32::from(network.network()));
    let end = start + size(network.prefix_len());
    let first = start;
    let second_size = size(prefixes[1]);
    let after_first = first + size(prefixes[0]);
    let second = after_first.div_ceil(second_size) * second_size;
    if prefixes.iter().any(|p| *p < network.prefix_len()) || second + second_size > end {
        return None;
    }
    let net = |at: u64, prefix: u8| {
        let addr = Ipv4Addr::from(u32::try_from(at).ok()?);
        Ipv4Net::new(addr, prefix).ok()
    };
    Some([net(first, prefixes[0])?, net(second, prefixes[1])?])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(text: &str) -> Ipv4Net {
        text.parse().unwrap()
    }

    #[test]
    fn docker_addresses_start_after_the_gateway() {
        let addrs = docker_addresses(net("10.33.0.0/16"), 3).unwrap();
        assert_eq!(
            addrs,
            [
                Ipv4Addr::new(10, 33, 0, 2),
                Ipv4Addr::new(10, 33, 0, 3),
                Ipv4Addr::new(10, 33, 0, 4)
            ]
        );
    }

    #[test]
    fn docker_network_too_small_is_none() {
        assert!(docker_addresses(net("10.0.0.0/29"), 5).is_some());
        assert!(docker_addresses(net("10.0.0.0/29"), 6).is_none());
    }

    #[test]
    fn aws_subnets_are_aligned_and_disjoint() {
        let [a, b] = aws_subnets(net("10.33.0.0/16"), [4, 34]).unwrap();
        assert_eq!(a, net("10.33.0.0/28"));
        assert_eq!(b, net("10.33.0.64/26"));
        assert!(!a.contains(&b.network()));
    }

    #[test]
    fn aws_vpc_too_small_is_none() {
        assert!(aws_subnets(net("10.33.0.0/27"), [4, 4]).is_some());
        assert!(aws_subnets(net("10.33.0.0/27"), [4, 12]).is_none());
        assert!(aws_subnets(net("10.33.0.0/28"), [2, 2]).is_none());
    }
}

/// Where docker clusters whose network was left at the default get theirs: one `/24` each,
/// inside `10.0.0.0/8`, so that any number of them run side by side on one engine.
pub const DEFAULT_POOL: &str = "10.0.0.0/8";

/// The size of a network taken from the pool.
pub const POOL_PREFIX: u8 = 24;

/// Whether two networks share an address.
pub fn overlaps(a: Ipv4Net, b: Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// The first network of `prefix` inside `pool` that overlaps none of `taken`, or `None` when the
/// pool is full.
pub fn free_subnet(pool: Ipv4Net, prefix: u8, taken: &[Ipv4Net]) -> Option<Ipv4Net> {
    let mut taken: Vec<Ipv4Net> = taken.to_vec();
    taken.sort_by_key(|n| n.network());
    pool.subnets(prefix.max(pool.prefix_len()))
        .ok()?
        .find(|candidate| !taken.iter().any(|t| overlaps(*t, *candidate)))
}

#[cfg(test)]
mod pool_tests {
    use super::*;

    fn net(text: &str) -> Ipv4Net {
        text.parse().unwrap_or_else(|_| Ipv4Net::default())
    }

    #[test]
    fn the_pool_gives_the_first_free_network_and_says_when_it_is_full() {
        let pool = net("10.0.0.0/8");
        assert_eq!(free_subnet(pool, 24, &[]), Some(net("10.0.0.0/24")));
        // Another cluster's /24, and a /16 that covers many: both skipped.
        let taken = [net("10.0.0.0/24"), net("10.0.1.0/24"), net("10.0.2.0/23")];
        assert_eq!(free_subnet(pool, 24, &taken), Some(net("10.0.4.0/24")));
        let taken = [net("10.0.0.0/16")];
        assert_eq!(free_subnet(pool, 24, &taken), Some(net("10.1.0.0/24")));
        // A small pool fills up.
        let small = net("10.9.0.0/23");
        assert_eq!(
            free_subnet(small, 24, &[net("10.9.0.0/24"), net("10.9.1.0/24")]),
            None
        );
        assert!(overlaps(net("10.33.0.0/16"), net("10.33.7.0/24")));
        assert!(!overlaps(net("10.33.0.0/16"), net("10.34.0.0/24")));
    }
}
