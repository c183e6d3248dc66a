//! Host names: the default names given to nodes in order, the DNS-label rule, and the
//! `--hostnames-from` file format (one name a line, optionally followed by an address; `#` starts a comment).

/// The default host names, given to nodes 1, 2, 3 … in order. Never reorder or edit this list:
/// links and configurations made earlier depend on it.
pub const DEFAULT_HOSTNAMES: &[&str] = &[
    "kestrel", "quartz", "uplift", "karma", "quarry", "unison", "kingdom", "quiver", "upland",
    "kindle", "quill", "umber", "kelvin", "quest", "uproar", "keystone", "quorum", "utopia",
    "kernel", "quasar", "unity", "kettle", "quaver", "upbeat", "kiosk", "quince", "urchin", "kiwi",
    "quokka", "usher", "knack", "quota", "utmost", "koala", "quirk", "uranium", "kudos", "quench",
    "unicorn", "kayak", "quail", "upstart", "kimono", "queen", "ursa", "kinship", "quiet",
    "uptown",
];

/// The host name of node `node` (numbered from 1) when no names were given.
pub fn default_hostname(node: u32) -> String {
    let index = (node as usize).saturating_sub(1);
    match DEFAULT_HOSTNAMES.get(index) {
        Some(name) => (*name).to_string(),
        None => format!("node{node}"),
    }
}

/// Why `name` is not a valid DNS label, if it isn't.
pub fn dns_label_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        return Some("is empty");
    }
    if name.len() > 63 {
        return Some("is longer than 63 characters");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Some("may only contain lowercase letters, digits and '-'");
    }
    if name.starts_with('-') || name.ends_with('-') {
        return Some("may not start or end with '-'");
    }
    None
}

/// Whether `name` is a host name (dot-separated DNS labels, any case) or an IPv4 address, as a
/// browser writes it in `Host` without the port.
pub fn is_host_name(name: &str) -> bool {
    name.len() <= 253
        && name
            .to_ascii_lowercase()
            .split('.')
            .all(|label| dns_label_problem(label).is_none())
}

/// The lines of a `--hostnames-from` file that name a host, without comments.
fn host_lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .map(|line| line.split('#').next().unwrap_or_default().trim())
        .filter(|line| !line.is_empty())
}

/// The host names listed in the text of a `--hostnames-from` file.
pub fn parse_hostnames_file(text: &str) -> Vec<String> {
    host_lines(text)
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// The addresses in the second column of a `--hostnames-from` file, one per host (empty where
/// a line gives none), or `None` when no line gives one.
pub fn parse_hostnames_addresses(text: &str) -> Option<Vec<String>> {
    let addresses: Vec<String> = host_lines(text)
        .map(|line| {
            line.split_whitespace()
                .nth(1)
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    addresses.iter().any(|a| !a.is_empty()).then_some(addresses)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_hostnames_are_unique_valid_labels() {
        let mut seen = std::collections::BTreeSet::new();
        for name in DEFAULT_HOSTNAMES {
            assert_eq!(dns_label_problem(name), None, "{name}");
            assert!(seen.insert(*name), "{name} twice");
        }
        let most = crate::spec::MAX_CASCADED_REPLICAS as usize + 8;
        assert!(DEFAULT_HOSTNAMES.len() >= most);
    }

    #[test]
    fn hostnames_file_skips_comments_blanks_and_addresses() {
        let text = "# hosts\nalpha 10.0.0.1\n\n  beta  # second\ngamma\n";
        assert_eq!(parse_hostnames_file(text), ["alpha", "beta", "gamma"]);
        assert_eq!(
            parse_hostnames_addresses(text).unwrap(),
            ["10.0.0.1", "", ""],
            "an address per host, empty where a line has none"
        );
        assert_eq!(parse_hostnames_addresses("alpha\nbeta # 10.0.0.9\n"), None);
    }

    #[test]
    fn dns_label_problems_are_named() {
        let check = |name: &str, expected: Option<&str>| {
            assert_eq!(dns_label_problem(name), expected, "{name:?}");
        };
        check("m1", None);
        check("", Some("is empty"));
        check(
            "M1",
            Some("may only contain lowercase letters, digits and '-'"),
        );
        check(
            "a_b",
            Some("may only contain lowercase letters, digits and '-'"),
        );
        check("-a", Some("may not start or end with '-'"));
        check(&"a".repeat(64), Some("is longer than 63 characters"));
    }
}
