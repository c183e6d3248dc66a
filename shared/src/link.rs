//! Share links: a draft encoded as a short, readable, versioned query (`v=2&pg=15&fm=repmgr&n=3`),
//! with defaults left out and never a secret. Decoding never panics: whatever cannot be used is
//! ignored and named in a diagnostic, so a tampered link still opens.
//!
//! Version 2 numbers nodes as TPA does (Barman 3, the cascaded replicas from 4). A version 1
//! link, made when Barman came after the cascaded replicas, opens as the same design: its host
//! names are reordered so that each keeps its role, and a notice says what moved.

use crate::diag::{Code, Diagnostic};
use crate::spec::{Draft, Flavour};

/// The version this build writes. Every earlier version must keep decoding.
pub const LINK_VERSION: u32 = 2;
/// The earliest version this build still reads.
pub const FIRST_LINK_VERSION: u32 = 1;
/// The longest link text decoded.
pub const MAX_LINK_LEN: usize = 8192;
/// The longest value of one parameter.
const MAX_VALUE_LEN: usize = 256;

/// Encodes `draft` as link text, without a leading `?` or `#`.
pub fn encode(draft: &Draft) -> String {
    let draft = draft.normalized();
    let mut out = form_urlencoded::Serializer::new(String::new());
    out.append_pair("v", &LINK_VERSION.to_string());
    if !draft.cluster_name.is_empty() {
        out.append_pair("name", &draft.cluster_name);
    }
    if draft.architecture.as_deref() != Some(crate::spec::ARCHITECTURE) {
        out.append_pair("arch", draft.architecture.as_deref().unwrap_or(""));
    }
    let short = match draft.postgres_flavour.as_deref().and_then(Flavour::parse) {
        Some(Flavour::Postgresql) => Some("pg"),
        Some(Flavour::Epas) => Some("epas"),
        Some(Flavour::Pgextended) => Some("pge"),
        None => None,
    };
    match (short, &draft.postgres_version) {
        (Some(key), Some(version)) => {
            out.append_pair(key, version);
        }
        (_, version) => {
            if let Some(flavour) = &draft.postgres_flavour {
                out.append_pair("flavour", flavour);
            }
            if let Some(version) = version {
                out.append_pair("version", version);
            }
        }
    }
    let pairs = [
        ("fm", &draft.failover_manager),
        ("platform", &draft.platform),
        ("region", &draft.region),
        ("type", &draft.instance_type),
        ("os", &draft.distribution),
        ("osv", &draft.os_version),
        ("n", &draft.num_cascaded_replicas),
    ];
    for (key, value) in pairs {
        if let Some(value) = value {
            out.append_pair(key, value);
        }
    }
    if draft.enable_haproxy {
        out.append_pair("haproxy", "1");
    }
    if draft.synchronous {
        out.append_pair("sync", "1");
    }
    if let Some(dcs) = &draft.patroni_dcs {
        out.append_pair("dcs", dcs);
    }
    if let Some(redwood) = draft.redwood {
        out.append_pair("redwood", if redwood { "1" } else { "0" });
    }
    append_list(&mut out, "loc", draft.location_names.as_deref());
    if let Some(owner) = &draft.owner {
        out.append_pair("owner", owner);
    }
    if let Some(network) = &draft.network {
        out.append_pair("net", network);
    }
    append_list(&mut out, "host", draft.hostnames.as_deref());
    append_list(&mut out, "ip", draft.addresses.as_deref());
    if let Some(placement) = &draft.placement {
        let names = draft.location_names_or_default();
        let digits: Option<String> = placement
            .iter()
            .map(|p| match names.iter().position(|n| n == p) {
                Some(0) => Some('0'),
                Some(1) => Some('1'),
                _ => None,
            })
            .collect();
        match digits {
            Some(digits) => {
                out.append_pair("at", &digits);
            }
            None => append_list(&mut out, "atname", Some(placement)),
        }
    }
    if let Some(backend) = &draft.keyring_backend {
        out.append_pair("keyring", backend);
    }
    if draft.volatile_subscriptions {
        out.append_pair("volatile", "1");
    }
    // A cluster deployed before nodes were numbered as TPA does keeps its numbering.
    if draft.numbering == crate::spec::Numbering::BarmanLast {
        out.append_pair("order", "barman-last");
    }
    let sizes = &draft.volume_sizes;
    for (key, value) in [
        ("rootgb", &sizes.root),
        ("pggb", &sizes.postgres),
        ("barmangb", &sizes.barman),
    ] {
        if let Some(value) = value {
            out.append_pair(key, value);
        }
    }
    out.finish()
}

/// A list as one parameter a value; an empty list as one empty value.
fn append_list(
    out: &mut form_urlencoded::Serializer<'_, String>,
    key: &str,
    list: Option<&[String]>,
) {
    match list {
        Some([]) => {
            out.append_pair(key, "");
        }
        Some(values) => {
            for value in values {
                out.append_pair(key, value);
            }
        }
        None => {}
    }
}

/// The full share URL for `draft` under `base` (the designer's address). The design goes in the
/// fragment, so it never reaches a server's logs.
pub fn url(base: &str, draft: &Draft) -> String {
    format!("{}#{}", base.trim_end_matches('#'), encode(draft))
}

/// Decodes link text (with or without a leading `?` or `#`, or a whole URL) into a draft. Every
/// parameter that cannot be used is named in a warning; a link of an unknown version is an error.
pub fn decode(text: &str) -> (Draft, Vec<Diagnostic>) {
    let mut out = Vec::new();
    let mut draft = Draft {
        architecture: Some(crate::spec::ARCHITECTURE.to_string()),
        ..Draft::default()
    };
    if text.len() > MAX_LINK_LEN {
        out.push(Diagnostic::error(
            "link",
            Code::LinkTooLong,
            format!("the link is {} characters long, more than the {MAX_LINK_LEN} a design needs: it was ignored; ask for a new link", text.len()),
        ));
        return (draft, out);
    }
    let query = match text.find('#').or_else(|| text.find('?')) {
        Some(at) => &text[at + 1..],
        None => text,
    };
    let mut seen: Vec<String> = Vec::new();
    let mut locations: Vec<String> = Vec::new();
    let mut hosts: Vec<String> = Vec::new();
    let mut addresses: Vec<String> = Vec::new();
    let mut version_seen = false;
    let mut version = LINK_VERSION;
    let mut at: Option<String> = None;
    let mut at_names: Vec<String> = Vec::new();
    let ignored = |out: &mut Vec<Diagnostic>, key: &str, why: String| {
        out.push(Diagnostic::warning(
            format!("link.{key}"),
            Code::LinkParameterIgnored,
            format!("the link's {key} was ignored: {why}"),
        ));
    };
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        let (key, value) = (key.into_owned(), value.into_owned());
        if key.is_empty() && value.is_empty() {
            continue;
        }
        if value.chars().count() > MAX_VALUE_LEN {
            ignored(
                &mut out,
                &key,
                format!("its value is longer than {MAX_VALUE_LEN} characters"),
            );
            continue;
        }
        if !matches!(key.as_str(), "loc" | "host" | "ip" | "atname") {
            if seen.contains(&key) {
                ignored(
                    &mut out,
                    &key,
                    "it appears more than once; the first one was kept".into(),
                );
                continue;
            }
            seen.push(key.clone());
        }
        let flag = |value: &str| match value {
            "1" | "true" | "on" => Some(true),
            "0" | "false" | "off" => Some(false),
            _ => None,
        };
        match key.as_str() {
            "v" => {
                version_seen = true;
                match value.parse::<u32>() {
                    Ok(v) if (FIRST_LINK_VERSION..=LINK_VERSION).contains(&v) => version = v,
                    _ => {
                        out.push(Diagnostic::error(
                            "link.v",
                            Code::LinkVersionUnsupported,
                            format!("this link has version '{value}', which this m1studio cannot read (it reads versions {FIRST_LINK_VERSION} to {LINK_VERSION}): open it with the m1studio that made it, or ask for a new link"),
                        ));
                        return (draft, out);
                    }
                }
            }
            "name" => draft.cluster_name = value,
            "arch" => draft.architecture = Some(value).filter(|v| !v.is_empty()),
            "pg" | "epas" | "pge" => {
                if draft.postgres_flavour.is_some() {
                    ignored(
                        &mut out,
                        &key,
                        "the link names more than one Postgres flavour; the first one was kept"
                            .into(),
                    );
                    continue;
                }
                let flavour = match key.as_str() {
                    "pg" => Flavour::Postgresql,
                    "epas" => Flavour::Epas,
                    _ => Flavour::Pgextended,
                };
                draft.postgres_flavour = Some(flavour.as_str().into());
                draft.postgres_version = Some(value);
            }
            "flavour" if draft.postgres_flavour.is_none() => draft.postgres_flavour = Some(value),
            "version" if draft.postgres_version.is_none() => draft.postgres_version = Some(value),
            "flavour" | "version" => {
                ignored(
                    &mut out,
                    &key,
                    "the link names more than one Postgres flavour; the first one was kept".into(),
                );
            }
            "fm" => draft.failover_manager = Some(value),
            "platform" => draft.platform = Some(value),
            "region" => draft.region = Some(value),
            "type" => draft.instance_type = Some(value),
            "os" => draft.distribution = Some(value),
            "osv" => draft.os_version = Some(value),
            "n" => draft.num_cascaded_replicas = Some(value),
            "dcs" => draft.patroni_dcs = Some(value),
            "owner" => draft.owner = Some(value),
            "net" => draft.network = Some(value),
            "haproxy" | "redwood" | "sync" => match flag(&value) {
                Some(on) if key == "haproxy" => draft.enable_haproxy = on,
                Some(on) if key == "sync" => draft.synchronous = on,
                Some(on) => draft.redwood = Some(on),
                None => ignored(&mut out, &key, format!("'{value}' is not 1 or 0")),
            },
            "loc" => locations.push(value),
            "at" if value.chars().all(|c| c == '0' || c == '1') => at = Some(value),
            "at" => ignored(
                &mut out,
                &key,
                format!("'{value}' is not a list of 0 and 1"),
            ),
            "atname" => at_names.push(value),
            "keyring" => draft.keyring_backend = Some(value),
            "volatile" => match flag(&value) {
                Some(on) => draft.volatile_subscriptions = on,
                None => ignored(&mut out, &key, format!("'{value}' is not 1 or 0")),
            },
            "order" if value == "barman-last" => {
                draft.numbering = crate::spec::Numbering::BarmanLast;
            }
            "order" => ignored(&mut out, &key, format!("'{value}' is not barman-last")),
            "rootgb" => draft.volume_sizes.root = Some(value),
            "pggb" => draft.volume_sizes.postgres = Some(value),
            "barmangb" => draft.volume_sizes.barman = Some(value),
            "host" => hosts.push(value),
            "ip" => addresses.push(value),
            _ => out.push(Diagnostic::warning(
                format!("link.{key}"),
                Code::LinkParameterUnknown,
                format!(
                    "the link's parameter '{key}' is not one this m1studio knows, and was ignored"
                ),
            )),
        }
    }
    if !version_seen && !query.trim().is_empty() {
        out.push(Diagnostic::warning(
            "link.v",
            Code::LinkVersionMissing,
            format!("the link has no version (v=…); it was read as version {LINK_VERSION}"),
        ));
    }
    if !locations.is_empty() {
        let locations: Vec<String> = locations.into_iter().filter(|l| !l.is_empty()).collect();
        draft.location_names = Some(locations);
    }
    if !hosts.is_empty() {
        draft.hostnames = Some(hosts.into_iter().filter(|h| !h.is_empty()).collect());
    }
    // Position matters: an empty address is a host without one.
    if addresses.iter().any(|a| !a.is_empty()) {
        draft.addresses = Some(addresses);
    }
    let names = draft.location_names_or_default();
    if let Some(digits) = at {
        draft.placement = Some(
            digits
                .chars()
                .map(|d| {
                    names
                        .get(usize::from(d == '1'))
                        .cloned()
                        .unwrap_or_default()
                })
                .collect(),
        );
    } else if !at_names.is_empty() {
        draft.placement = Some(at_names);
    }
    if version == 1 {
        renumber_version_1(&mut draft, &mut out);
    }
    (draft, out)
}

/// Version 1 numbered Barman after the cascaded replicas; version 2 numbers it 3, as TPA does.
/// The host names and addresses of a version 1 link move with their nodes, so that each host
/// keeps its role, and a notice says what changed. With no cascaded replica nothing moves.
fn renumber_version_1(draft: &mut Draft, out: &mut Vec<Diagnostic>) {
    let cascaded = match draft.num_cascaded_replicas.as_deref() {
        None => crate::spec::DEFAULT_CASCADED_REPLICAS as usize,
        Some(text) => match text.trim().parse::<usize>() {
            Ok(n) if n <= crate::spec::MAX_CASCADED_REPLICAS as usize => n,
            _ => return,
        },
    };
    if cascaded == 0 {
        return;
    }
    // The old node of Barman (3 + n) becomes 3; the cascaded replicas move up by one.
    let move_barman = |list: &mut Vec<String>| {
        let barman = 2 + cascaded;
        if list.len() > barman {
            let host = list.remove(barman);
            list.insert(2, host);
        }
    };
    if let Some(addresses) = draft.addresses.as_mut() {
        move_barman(addresses);
    }
    let message = match draft.hostnames.as_mut() {
        Some(hosts) => {
            move_barman(hosts);
            let barman = hosts.get(2).cloned().unwrap_or_default();
            format!(
                "this link was made when m1studio numbered Barman after the cascaded replicas: nodes now follow TPA's numbering (Barman 3, the cascaded replicas from 4), and each host kept its role, so Barman is still '{barman}'"
            )
        }
        None => format!(
            "this link was made when m1studio numbered Barman after the cascaded replicas: nodes now follow TPA's numbering, so the default host names move with them: Barman is now '{}' (node 3, it was '{}'), and the cascaded replicas start at node 4",
            crate::hostnames::default_hostname(3),
            crate::hostnames::default_hostname(3 + cascaded as u32)
        ),
    };
    out.push(Diagnostic::info("link.v", Code::LinkRenumbered, message));
}
