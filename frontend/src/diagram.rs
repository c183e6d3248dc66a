//! The topology diagram as a standalone SVG document: the two locations as areas, a box per
//! instance, and arrows for streaming, cascading, backups and routing. The same text is shown on
//! the page and offered as a download. Pure, and tested natively.

use m1studio_shared::api::{ClusterStatus, Machine, NodeStatus, PostgresRole};
use m1studio_shared::{Design, FailoverManager, Instance, Kind, Role, Topology};
use std::fmt::Write as _;

const W: u32 = 128;
const H: u32 = 46;
const GAP_X: u32 = 32;
const GAP_Y: u32 = 60;
const PAD: u32 = 20;
const TITLE: u32 = 30;
/// Cascaded replicas per row; more wrap to the next row.
const GRID_COLUMNS: u32 = 6;
/// Up to this many cascaded replicas get an arrow each; more get one arrow to their group.
const ARROWS_EACH: u32 = 6;

const STYLE: &str = "\
.area{fill:#f5f7fa;stroke:#7b8794;stroke-width:1.5}\
.area-title{font:600 14px sans-serif;fill:#1f2933;text-anchor:end}\
.node rect{stroke-width:2;rx:8}\
.node text{font:13px sans-serif;fill:#102a43;text-anchor:middle}\
.node .name{font-weight:600}\
.primary rect{fill:#d9f2e6;stroke:#1f7a4d}\
.replica rect,.cascaded-replica rect{fill:#e3ecfa;stroke:#2456a6}\
.barman rect{fill:#fdf0d9;stroke:#9a5b00}\
.etcd rect{fill:#efe6fb;stroke:#6b3fa0}\
.haproxy rect{fill:#fde4e4;stroke:#a12f2f}\
.badge rect{fill:#9a5b00;stroke:none;rx:9}\
.badge text{fill:#fff;font:600 11px sans-serif;text-anchor:middle}\
.group{fill:none;stroke:#7b8794;stroke-dasharray:6 4;rx:10}\
.group-title{font:12px sans-serif;fill:#3e4c59}\
.edge{fill:none;stroke-width:2}\
.streaming{stroke:#2456a6}\
.backup{stroke:#9a5b00;stroke-dasharray:7 5}\
.routing{stroke:#a12f2f;stroke-dasharray:2 4}\
.edge-label{font:11px sans-serif;fill:#3e4c59}\
.legend text{font:12px sans-serif;fill:#1f2933}\
.live rect{rx:8;stroke:none}\
.live text{font:600 11px sans-serif;text-anchor:middle;fill:#fff}\
.live-primary rect{fill:#1f7a4d}\
.live-standby rect{fill:#2456a6}\
.live-down rect,.live-missing rect,.live-exited rect{fill:#a12f2f}\
.live-running rect{fill:#52606d}\
.live-unhealthy rect{fill:#b7791f}\
.node.is-down>rect{stroke-dasharray:5 4;opacity:.55}";

/// Escapes text for SVG.
pub(crate) fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[derive(Clone, Copy)]
struct Box2 {
    x: u32,
    y: u32,
}

impl Box2 {
    fn cx(self) -> u32 {
        self.x + W / 2
    }
    fn bottom(self) -> u32 {
        self.y + H
    }
    fn right(self) -> u32 {
        self.x + W
    }
}

fn column_x(column: u32) -> u32 {
    PAD * 2 + column * (W + GAP_X)
}

fn role_text(instance: &Instance) -> &'static str {
    match instance.kind {
        Kind::Primary => "primary",
        Kind::Replica => "replica",
        Kind::CascadedReplica => "cascaded replica",
        Kind::Barman => "barman",
        Kind::Etcd => "etcd",
        Kind::Haproxy => "haproxy",
    }
}

/// What the live status says of a node: its CSS state and a short text.
fn live_text(node: &NodeStatus) -> (&'static str, String) {
    match node.postgres {
        Some(PostgresRole::Primary) => (
            "primary",
            format!("primary · timeline {}", node.timeline.unwrap_or(0)),
        ),
        Some(PostgresRole::Standby) => (
            "standby",
            format!(
                "standby · lag {} B",
                node.lag_bytes.map_or_else(|| "?".into(), |l| l.to_string())
            ),
        ),
        Some(PostgresRole::Down) => ("down", "Postgres down".into()),
        None if node.machine == Machine::Running => match &node.service {
            Some(service) if service.healthy => ("running", service.summary.clone()),
            Some(service) => ("unhealthy", service.summary.clone()),
            None => ("running", "running".into()),
        },
        None if node.machine == Machine::Missing => ("missing", "no machine".into()),
        None if node.machine == Machine::Unreachable => ("exited", "host unreachable".into()),
        None => ("exited", format!("container {}", node.machine.as_str())),
    }
}

fn node(out: &mut String, instance: &Instance, at: Box2, live: Option<&ClusterStatus>) {
    let status = live.and_then(|status| status.nodes.iter().find(|n| n.name == instance.name));
    let state = status.map(live_text);
    let down = matches!(state, Some(("down" | "missing" | "exited", _)));
    let _ = write!(
        out,
        r#"<g class="node {}{}" data-name="{}" data-node="{}"><rect x="{}" y="{}" width="{W}" height="{H}"/><text class="name" x="{}" y="{}">{}</text><text x="{}" y="{}">{}</text>"#,
        instance.kind.as_str(),
        if down { " is-down" } else { "" },
        esc(&instance.name),
        instance.node,
        at.x,
        at.y,
        at.cx(),
        at.y + 19,
        esc(&instance.name),
        at.cx(),
        at.y + 36,
        role_text(instance),
    );
    if instance.has(Role::Witness) {
        let _ = write!(
            out,
            r#"<g class="badge witness"><rect x="{}" y="{}" width="58" height="18"/><text x="{}" y="{}">witness</text></g>"#,
            at.right() - 46,
            at.y - 10,
            at.right() - 17,
            at.y + 3
        );
    }
    if let Some((class, text)) = state {
        let routes = status
            .and_then(|n| n.service.as_ref())
            .map(|service| service.routes_text())
            .filter(|routes| !routes.is_empty());
        let _ = write!(
            out,
            r#"<g class="live live-{class}" data-live="{class}"{}><rect x="{}" y="{}" width="{}" height="18"/><text x="{}" y="{}">{}</text>"#,
            routes
                .as_ref()
                .map(|r| format!(r#" data-routes="{}""#, esc(r)))
                .unwrap_or_default(),
            at.x + 4,
            at.y + H + 4,
            W - 8,
            at.cx(),
            at.y + H + 17,
            esc(&text)
        );
        if let Some(routes) = routes {
            let _ = write!(out, "<title>{}</title>", esc(&routes));
        }
        out.push_str("</g>");
    }
    out.push_str("</g>");
}

fn edge(out: &mut String, class: &str, points: &[(u32, u32)], label: Option<(&str, u32, u32)>) {
    let path: Vec<String> = points
        .iter()
        .enumerate()
        .map(|(i, (x, y))| format!("{}{x} {y}", if i == 0 { "M" } else { "L" }))
        .collect();
    let _ = write!(
        out,
        r#"<path class="edge {class}" d="{}" marker-end="url(#arrow-{class})"/>"#,
        path.join(" ")
    );
    if let Some((text, x, y)) = label {
        let _ = write!(
            out,
            r#"<text class="edge-label" x="{x}" y="{y}">{}</text>"#,
            esc(text)
        );
    }
}

/// The diagram of `topology`, a design's instances, as an SVG document.
pub fn svg(design: &Design, topology: &Topology) -> String {
    svg_with(design, topology, None)
}

/// The diagram of a deployed cluster, with each node's live role, timeline and lag.
pub fn live_svg(design: &Design, topology: &Topology, status: &ClusterStatus) -> String {
    svg_with(design, topology, Some(status))
}

fn svg_with(design: &Design, topology: &Topology, live: Option<&ClusterStatus>) -> String {
    let [main, dr] = design.locations();
    // Nodes a config.yml placed in the other location than the M1 layout's (TPA puts Barman in
    // the first, and spreads etcd and HAProxy): each area gets a row of its own for them.
    let moved_to = |area: &str| -> Vec<&Instance> {
        topology
            .instances
            .iter()
            .filter(|i| i.location == area && design.locations()[i.kind.m1_location()] != area)
            .collect()
    };
    let (moved_a, moved_b) = (moved_to(main), moved_to(dr));
    let moved = |i: &Instance| moved_a.iter().chain(&moved_b).any(|m| m.name == i.name);
    let of = |kind: Kind| {
        topology
            .of_kind(kind)
            .filter(|i| !moved(i))
            .collect::<Vec<_>>()
    };
    let (primary, replica) = (of(Kind::Primary), of(Kind::Replica));
    let (cascaded, barman, etcd, haproxy) = (
        of(Kind::CascadedReplica),
        of(Kind::Barman),
        of(Kind::Etcd),
        of(Kind::Haproxy),
    );
    let n = cascaded.len() as u32;
    let grid_columns = n.clamp(1, GRID_COLUMNS);
    let grid_rows = n.div_ceil(GRID_COLUMNS).max(1);
    // The quorum's frame is at least two boxes wide, for its title, when members moved away.
    let etcd_columns = match etcd.len() as u32 {
        0 => 0,
        here if (here as usize) < topology.of_kind(Kind::Etcd).count() => here.max(2),
        here => here,
    };
    let columns = (2 + etcd_columns).max(1 + grid_columns);

    let columns = columns.max(moved_a.len() as u32).max(moved_b.len() as u32);
    let area_width = PAD * 2 + columns * (W + GAP_X) - GAP_X;
    let width = area_width + PAD * 2;
    // Location A: HAProxy (if any) above the primary and the replica, etcd beside them, and the
    // nodes moved here below them.
    let a_top = PAD;
    let pg_row = u32::from(!haproxy.is_empty());
    let a_rows = pg_row + 1 + u32::from(!moved_a.is_empty());
    let row_y = |row: u32| a_top + TITLE + 10 + row * (H + GAP_Y);
    let a_height =
        TITLE + 10 + a_rows * (H + GAP_Y) - GAP_Y + PAD + if etcd.is_empty() { 0 } else { 6 };
    // Location B: Barman under the primary, the cascaded replicas under the replica, and the
    // nodes moved here below them.
    let b_top = a_top + a_height + GAP_Y;
    let b_first = b_top + TITLE + 16;
    let group_extra = if n > ARROWS_EACH { 14 } else { 0 };
    let grid_rows = if barman.is_empty() && n == 0 {
        0
    } else {
        grid_rows
    };
    let moved_b_y = b_first + group_extra + grid_rows * (H + GAP_X);
    let b_rows = grid_rows + u32::from(!moved_b.is_empty());
    let b_height = TITLE + 16 + group_extra + b_rows.max(1) * (H + GAP_X) - GAP_X + PAD;
    let legend_y = b_top + b_height + 28;
    // The legend: its entries on one line, and the note after them, or on a line of its own
    // when the diagram is too narrow for both.
    let mut legend = vec![
        ("streaming", "streaming replication"),
        ("backup", "Barman backup"),
    ];
    if !haproxy.is_empty() {
        legend.push(("routing", "HAProxy routing"));
    }
    let note = match (design.failover(), design.witness()) {
        (FailoverManager::Patroni, _) => "quorum: etcd".to_string(),
        (manager, true) => format!("{}: Barman is also a witness", manager.title()),
        (manager, false) => format!(
            "{}: odd number of Postgres nodes, no witness",
            manager.title()
        ),
    };
    let entries_end = PAD
        + legend
            .iter()
            .map(|(_, text)| 60 + 8 * text.len() as u32)
            .sum::<u32>();
    let note_width = 7 * note.len() as u32;
    let note_wraps = entries_end + note_width + PAD > width;
    let width = width.max(entries_end + PAD).max(PAD * 2 + note_width);
    let note_y = if note_wraps { legend_y + 22 } else { legend_y };
    let height = note_y + 16;

    let mut out = String::with_capacity(4096 + 400 * topology.instances.len());
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" aria-labelledby="diagram-title"><title id="diagram-title">Topology of cluster {}: {} instances</title><style>{STYLE}</style><defs>"#,
        esc(design.cluster_name()),
        topology.instances.len()
    );
    for (class, colour) in [
        ("streaming", "#2456a6"),
        ("backup", "#9a5b00"),
        ("routing", "#a12f2f"),
    ] {
        let _ = write!(
            out,
            r#"<marker id="arrow-{class}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0 0L10 5L0 10z" fill="{colour}"/></marker>"#
        );
    }
    out.push_str("</defs>");
    for (name, top, h) in [(main, a_top, a_height), (dr, b_top, b_height)] {
        let _ = write!(
            out,
            r#"<g class="location" data-location="{}"><rect class="area" x="{PAD}" y="{top}" width="{area_width}" height="{h}" rx="12"/><text class="area-title" x="{}" y="{}">location {}</text></g>"#,
            esc(name),
            PAD + area_width - 12,
            top + 22,
            esc(name)
        );
    }

    let moved_at = |name: &str| -> Option<Box2> {
        if let Some(i) = moved_a.iter().position(|m| m.name == name) {
            return Some(Box2 {
                x: column_x(i as u32),
                y: row_y(pg_row + 1),
            });
        }
        moved_b.iter().position(|m| m.name == name).map(|i| Box2 {
            x: column_x(i as u32),
            y: moved_b_y,
        })
    };
    let first_of = |kind: Kind| topology.of_kind(kind).next().map(|i| i.name.as_str());
    let primary_at = first_of(Kind::Primary).and_then(&moved_at).unwrap_or(Box2 {
        x: column_x(0),
        y: row_y(pg_row),
    });
    let replica_at = first_of(Kind::Replica).and_then(&moved_at).unwrap_or(Box2 {
        x: column_x(1),
        y: row_y(pg_row),
    });
    let barman_at = topology
        .of_kind(Kind::Barman)
        .next()
        .and_then(|b| moved_at(&b.name))
        .unwrap_or(Box2 {
            x: column_x(0),
            y: b_first + group_extra,
        });
    let cascade_at = |i: u32| Box2 {
        x: column_x(1 + i % GRID_COLUMNS),
        y: b_first + group_extra + (i / GRID_COLUMNS) * (H + GAP_X),
    };

    // Edges first, so that boxes sit on top of them.
    edge(
        &mut out,
        "streaming",
        &[
            (primary_at.right(), primary_at.y + H / 2),
            (replica_at.x - 2, replica_at.y + H / 2),
        ],
        None,
    );
    edge(
        &mut out,
        "backup",
        &[
            (primary_at.cx(), primary_at.bottom()),
            (barman_at.cx(), barman_at.y - 2),
        ],
        Some((
            "backup + WAL",
            primary_at.cx() + 6,
            // Below the live status, when the diagram shows one.
            primary_at.bottom() + if live.is_some() { 36 } else { 18 },
        )),
    );
    if n > ARROWS_EACH {
        let frame_top = b_first - 4;
        edge(
            &mut out,
            "streaming",
            &[
                (replica_at.cx(), replica_at.bottom()),
                (replica_at.cx(), frame_top - 2),
            ],
            Some(("cascading", replica_at.cx() + 6, replica_at.bottom() + 18)),
        );
        let frame_x = column_x(1) - 8;
        let frame_w = grid_columns * (W + GAP_X) - GAP_X + 16;
        let frame_h = grid_rows * (H + GAP_X) - GAP_X + group_extra + 12;
        let _ = write!(
            out,
            r#"<g class="cascade-group"><rect class="group" x="{frame_x}" y="{frame_top}" width="{frame_w}" height="{frame_h}"/><text class="group-title" x="{}" y="{}">{n} cascaded replicas, all streaming from {}</text></g>"#,
            frame_x + 10,
            frame_top + 14,
            esc(replica.first().map(|r| r.name.as_str()).unwrap_or_default())
        );
    } else {
        for i in 0..n {
            let at = cascade_at(i);
            let label =
                (i == 0).then_some(("cascading", replica_at.cx() + 6, replica_at.bottom() + 18));
            edge(
                &mut out,
                "streaming",
                &[(replica_at.cx(), replica_at.bottom()), (at.cx(), at.y - 2)],
                label,
            );
        }
    }
    // The edges of the moved nodes: a cascaded replica streams from the replica, HAProxy
    // routes to the primary (Barman's backup edge is drawn above, to wherever it is).
    for m in moved_a.iter().chain(&moved_b) {
        let Some(at) = moved_at(&m.name) else {
            continue;
        };
        let (from, to) = if at.y > replica_at.y {
            ((replica_at.cx(), replica_at.bottom()), (at.cx(), at.y - 2))
        } else {
            ((replica_at.cx(), replica_at.y), (at.cx(), at.bottom() + 2))
        };
        match m.kind {
            Kind::CascadedReplica => edge(&mut out, "streaming", &[from, to], None),
            Kind::Haproxy => edge(
                &mut out,
                "routing",
                &[(at.cx(), at.y), (primary_at.cx(), primary_at.bottom() + 2)],
                None,
            ),
            _ => {}
        }
    }
    let haproxy_at = |i: u32| Box2 {
        x: column_x(i),
        y: row_y(0),
    };
    for i in 0..haproxy.len() as u32 {
        let at = haproxy_at(i);
        let label = (i == 0).then_some(("routes to the leader", at.cx() + 6, at.bottom() + 18));
        edge(
            &mut out,
            "routing",
            &[
                (at.cx(), at.bottom()),
                (primary_at.cx() + i * 12, primary_at.y - 2),
            ],
            label,
        );
    }
    let etcd_total = topology.of_kind(Kind::Etcd).count();
    if !etcd.is_empty() {
        let x = column_x(2) - 10;
        let w = etcd_columns * (W + GAP_X) - GAP_X + 20;
        let _ = write!(
            out,
            r#"<g class="etcd-group"><rect class="group" x="{x}" y="{}" width="{w}" height="{}"/><text class="group-title" x="{}" y="{}">etcd: Patroni's quorum ({} of {} must be up)</text></g>"#,
            primary_at.y - 20,
            H + 28,
            x + 10,
            primary_at.y - 6,
            etcd_total / 2 + 1,
            etcd_total
        );
    }

    for p in &primary {
        node(&mut out, p, primary_at, live);
    }
    for r in &replica {
        node(&mut out, r, replica_at, live);
    }
    for (i, c) in cascaded.iter().enumerate() {
        node(&mut out, c, cascade_at(i as u32), live);
    }
    for b in &barman {
        node(&mut out, b, barman_at, live);
    }
    for (i, e) in etcd.iter().enumerate() {
        node(
            &mut out,
            e,
            Box2 {
                x: column_x(2 + i as u32),
                y: primary_at.y + 4,
            },
            live,
        );
    }
    for (i, h) in haproxy.iter().enumerate() {
        node(&mut out, h, haproxy_at(i as u32), live);
    }
    for m in moved_a.iter().chain(&moved_b) {
        if let Some(at) = moved_at(&m.name) {
            node(&mut out, m, at, live);
        }
    }

    let mut x = PAD;
    let _ = write!(out, r#"<g class="legend">"#);
    for (class, text) in legend {
        let _ = write!(
            out,
            r#"<path class="edge {class}" d="M{x} {legend_y}L{} {legend_y}"/><text x="{}" y="{}">{text}</text>"#,
            x + 36,
            x + 44,
            legend_y + 4
        );
        x += 60 + 8 * text.len() as u32;
    }
    if note_wraps {
        x = PAD;
    }
    let _ = write!(
        out,
        r#"<text x="{x}" y="{}">{}</text></g></svg>"#,
        note_y + 4,
        esc(&note)
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use m1studio_shared::{Draft, configure};

    fn diagram(draft: Draft) -> String {
        let configured = configure(&draft).0.expect("valid");
        svg(&configured.design, &configured.topology)
    }

    /// The width of an SVG document's view box.
    fn width_of(svg: &str) -> u32 {
        svg.split("viewBox=\"0 0 ")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .and_then(|w| w.parse().ok())
            .expect("a view box")
    }

    fn count(svg: &str, needle: &str) -> usize {
        svg.matches(needle).count()
    }

    /// The top of node `name`'s box, and of location `location`'s area.
    fn top_of(svg: &str, needle: &str) -> u32 {
        svg.split(needle)
            .nth(1)
            .and_then(|rest| rest.split(" y=\"").nth(1))
            .and_then(|rest| rest.split('"').next())
            .and_then(|y| y.parse().ok())
            .unwrap_or_else(|| panic!("{needle} not in the diagram"))
    }

    #[test]
    fn nodes_a_tpa_file_placed_elsewhere_are_drawn_in_their_location() {
        let text =
            include_str!("../../shared/tests/fixtures/tpa/legacy-docker-patroni-haproxy-c1.yml");
        let draft = m1studio_shared::config::read(text).0.unwrap();
        let svg = diagram(draft);
        let (a, b) = (
            top_of(&svg, r#"data-location="main""#),
            top_of(&svg, r#"data-location="dr""#),
        );
        let inside = |name: &str| {
            let y = top_of(&svg, &format!(r#"data-name="{name}""#));
            if y >= b {
                "dr"
            } else if y >= a {
                "main"
            } else {
                "outside"
            }
        };
        // Barman (node 3), etcd's nodes 5 and 7, and HAProxy's node 9, as TPA placed them.
        for (name, location) in [
            ("upstage", "main"),
            ("knead", "main"),
            ("unfurl", "main"),
            ("keynote", "dr"),
            ("quince", "dr"),
            ("unhooks", "main"),
            ("kooky", "dr"),
            ("knave", "main"),
            ("unscrew", "dr"),
        ] {
            assert_eq!(inside(name), location, "{name}");
        }
        assert_eq!(count(&svg, r#"class="node "#), 9);
        assert!(
            svg.contains("(2 of 3 must be up)"),
            "the quorum counts every member"
        );
    }

    #[test]
    fn the_default_design_has_four_nodes_and_no_witness() {
        let svg = diagram(Draft::starter());
        assert_eq!(count(&svg, r#"<g class="node "#), 4);
        assert_eq!(count(&svg, r#"class="node cascaded-replica""#), 1);
        assert_eq!(count(&svg, "badge witness"), 0);
        assert_eq!(count(&svg, r#"class="location""#), 2);
        assert!(svg.contains("location main") && svg.contains("location dr"));
    }

    #[test]
    fn patroni_with_haproxy_shows_three_etcd_and_two_haproxy_nodes() {
        let svg = diagram(Draft {
            failover_manager: Some("patroni".into()),
            enable_haproxy: true,
            ..Draft::starter()
        });
        assert_eq!(count(&svg, r#"class="node etcd""#), 3);
        assert_eq!(count(&svg, r#"class="node haproxy""#), 2);
        assert_eq!(count(&svg, "edge routing"), 3, "two routes and the legend");
    }

    #[test]
    fn no_cascaded_replicas_shows_the_witness_badge() {
        let svg = diagram(Draft {
            num_cascaded_replicas: Some("0".into()),
            ..Draft::starter()
        });
        assert_eq!(count(&svg, "badge witness"), 1);
        assert_eq!(count(&svg, r#"class="node cascaded-replica""#), 0);
    }

    #[test]
    fn many_cascaded_replicas_are_grouped_and_wrapped() {
        let svg = diagram(Draft {
            num_cascaded_replicas: Some("32".into()),
            ..Draft::starter()
        });
        assert_eq!(count(&svg, r#"class="node cascaded-replica""#), 32);
        assert_eq!(count(&svg, "cascade-group"), 1);
        assert!(svg.contains("32 cascaded replicas, all streaming from quartz"));
        let width = width_of(&svg);
        assert!(width < 1200, "wraps instead of growing wide: {width}");
    }

    #[test]
    fn the_legend_fits_a_narrow_diagram() {
        let svg = diagram(Draft {
            num_cascaded_replicas: Some("0".into()),
            ..Draft::starter()
        });
        let width = width_of(&svg);
        let legend = svg.split(r#"<g class="legend">"#).nth(1).unwrap();
        for text in legend.split("<text x=\"").skip(1) {
            let x: u32 = text.split('"').next().unwrap().parse().unwrap();
            let words = text.split('>').nth(1).unwrap().split('<').next().unwrap();
            assert!(
                x + 7 * words.len() as u32 <= width,
                "{words:?} at {x} overflows {width}"
            );
        }
    }

    #[test]
    fn the_diagram_is_well_formed_xml_text() {
        for n in [0, 1, 5, 7, 32] {
            let svg = diagram(Draft {
                num_cascaded_replicas: Some(n.to_string()),
                failover_manager: Some("patroni".into()),
                enable_haproxy: true,
                ..Draft::starter()
            });
            assert_eq!(count(&svg, "<g"), count(&svg, "</g>"), "n={n}");
            assert!(svg.ends_with("</svg>"));
        }
    }

    #[test]
    fn live_etcd_and_haproxy_nodes_say_what_their_services_say() {
        use m1studio_shared::api::{NodeStatus, Route, ServiceStatus};
        let configured = configure(&Draft {
            failover_manager: Some("patroni".into()),
            enable_haproxy: true,
            ..Draft::starter()
        })
        .0
        .expect("valid");
        let topology = &configured.topology;
        let nodes = topology
            .instances
            .iter()
            .map(|i| NodeStatus {
                name: i.name.clone(),
                designed: i.kind,
                machine: Machine::Running,
                postgres: None,
                timeline: None,
                lag_bytes: None,
                upstream: None,
                service: match i.kind {
                    Kind::Etcd => Some(ServiceStatus {
                        healthy: false,
                        summary: "no quorum".into(),
                        leader: Some(false),
                        routes: Vec::new(),
                    }),
                    Kind::Haproxy => Some(ServiceStatus {
                        healthy: true,
                        summary: "rw → kestrel".into(),
                        leader: None,
                        routes: vec![
                            Route {
                                port: 5432,
                                up: vec!["kestrel".into()],
                            },
                            Route {
                                port: 5433,
                                up: Vec::new(),
                            },
                        ],
                    }),
                    _ => None,
                },
            })
            .collect();
        let status = ClusterStatus {
            nodes,
            primary: None,
            barman: None,
        };
        let svg = live_svg(&configured.design, topology, &status);
        assert_eq!(
            count(&svg, r#"data-live="unhealthy""#),
            3,
            "three etcd members without a quorum"
        );
        assert_eq!(count(&svg, ">no quorum<"), 3);
        assert_eq!(count(&svg, ">rw → kestrel<"), 2);
        assert_eq!(
            count(&svg, "<title>5432 → kestrel; 5433 → nothing</title>"),
            2
        );
        assert_eq!(count(&svg, "<g"), count(&svg, "</g>"));
    }
}
