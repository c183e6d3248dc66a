//! What the page shows for a draft, derived in one place: diagnostics, the configured design,
//! the diagram, the link and the command lines. Pure, and tested natively.

use crate::diagram;
use m1studio_shared::cmdline::{Program, command_line, hostnames_file};
use m1studio_shared::plan::{Plan, PlanOptions, plan};
use m1studio_shared::{Configured, Diagnostic, Draft, Severity, configure, link};

/// Everything the page derives from a draft.
#[derive(Debug, Clone, PartialEq)]
pub struct View {
    /// Every diagnostic, errors first.
    pub diagnostics: Vec<Diagnostic>,
    /// The design, its topology and config.yml, when there is no error.
    pub configured: Option<Configured>,
    /// The link text (without `#`).
    pub link: String,
    /// The equivalent `m1studio configure` line.
    pub m1studio_line: String,
    /// The equivalent `tpaexec configure` line.
    pub tpaexec_line: String,
    /// Where the file `tpaexec configure` writes would differ from the design shown.
    pub tpa_differences: Vec<String>,
    /// Whether the design places nodes as a config.yml did, which no option of `configure` can
    /// say: the command lines then give the M1 layout.
    pub placed: bool,
    /// The `--hostnames-from` file the lines refer to, if any.
    pub hostnames_file: Option<String>,
    /// The topology diagram, when there is no error.
    pub svg: Option<String>,
    /// The deployment plan (each node's files and the steps), or why there is none yet.
    pub plan: Option<Result<Plan, Vec<Diagnostic>>>,
}

/// How the designer previews a deployment of `design`: with the profile a deployment gets by
/// default on its platform, and EDB software shown as if the subscription token were set (the
/// browser cannot know; the runner checks).
fn preview(design: &m1studio_shared::Design) -> PlanOptions {
    PlanOptions {
        profile: m1studio_shared::plan::Profile::for_platform(design.platform().platform()),
        edb_token: true,
    }
}

impl View {
    /// Derives the view of `draft`.
    pub fn of(draft: &Draft) -> View {
        let (configured, mut diagnostics) = configure(draft);
        diagnostics.sort_by_key(|d| d.severity);
        let dir = if draft.cluster_name.is_empty() {
            "m1"
        } else {
            draft.cluster_name.as_str()
        };
        let svg = configured
            .as_ref()
            .map(|c| diagram::svg(&c.design, &c.topology));
        let plan = configured
            .as_ref()
            .map(|c| plan(&c.design, &c.topology, preview(&c.design)));
        View {
            diagnostics,
            link: link::encode(draft),
            m1studio_line: command_line(Program::M1studio, dir, draft),
            tpaexec_line: command_line(Program::Tpaexec, dir, draft),
            tpa_differences: configured
                .as_ref()
                .map(|c| m1studio_shared::tpa::tpa_differences(&c.design, &c.topology))
                .unwrap_or_default(),
            placed: configured
                .as_ref()
                .is_some_and(|c| c.design.placement().is_some()),
            hostnames_file: hostnames_file(draft),
            svg,
            plan,
            configured,
        }
    }

    /// The `m1studio configure` script: the line, after a comment when the design places nodes
    /// off the M1 layout, which the line cannot say.
    pub fn m1studio_script(&self) -> String {
        let mut text = String::new();
        if self.placed {
            text.push_str("# This design keeps the locations its config.yml gave its nodes; configure's options\n# give the M1 layout. Keep the config.yml (or the link) to keep those locations.\n");
        }
        text + &self.m1studio_line + "\n"
    }

    /// The `tpaexec configure` script: each way TPA's file would differ from the design shown,
    /// as comments, then the line.
    pub fn tpaexec_script(&self) -> String {
        let mut text = String::new();
        if !self.tpa_differences.is_empty() {
            text.push_str("# Where the config.yml TPA v23.31 writes for this line differs from the design shown:\n");
            for difference in &self.tpa_differences {
                text.push_str(&format!("# - {difference}\n"));
            }
        }
        text + &self.tpaexec_line + "\n"
    }

    /// The config.yml to download: the one shown, with a vault of its own (`vault`, a fresh
    /// UUID) when the design has none yet, as `tpaexec configure` makes one for each directory.
    pub fn config_download(&self, vault: Option<&str>) -> Option<String> {
        let configured = self.configured.as_ref()?;
        if configured.design.vault_name().is_some() {
            return Some(configured.config_yml.clone());
        }
        let design = vault.and_then(|v| configured.design.with_vault_name(v));
        Some(match design {
            Some(design) => m1studio_shared::config::render(&design, &configured.topology),
            None => configured.config_yml.clone(),
        })
    }

    /// The diagnostics about one field (its path, or an element of it).
    pub fn about<'a>(&'a self, path: &'a str) -> impl Iterator<Item = &'a Diagnostic> + 'a {
        self.diagnostics.iter().filter(move |d| {
            d.path == path
                || d.path
                    .strip_prefix(path)
                    .is_some_and(|rest| rest.starts_with('['))
        })
    }

    /// How many diagnostics have `severity`.
    pub fn count(&self, severity: Severity) -> usize {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == severity)
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_starter_design_is_configured_with_a_diagram() {
        let view = View::of(&Draft::starter());
        assert_eq!(view.count(Severity::Error), 0);
        assert!(view.configured.is_some());
        assert!(view.svg.as_deref().is_some_and(|s| s.starts_with("<svg")));
        assert_eq!(view.link, "v=2&name=m1&pg=15&fm=repmgr&platform=docker");
        // The tpaexec script says where TPA would put Barman, before the line.
        let script = view.tpaexec_script();
        assert!(
            script.starts_with("# Where the config.yml TPA v23.31 writes"),
            "{script}"
        );
        assert!(
            script.contains("# - TPA puts uplift (barman, node 3) in 'main'"),
            "{script}"
        );
        assert!(script.ends_with("--platform docker\n"), "{script}");
        // The download has a vault of its own; the preview none, so it stays the same.
        let configured = view.configured.as_ref().unwrap();
        assert!(!configured.config_yml.contains("vault_name"));
        let vault = "8f4d20e7-034a-4b4c-9b0c-94a7b510587f";
        let download = view.config_download(Some(vault)).unwrap();
        assert!(
            download.contains(&format!("keyring_backend: system\nvault_name: {vault}\n")),
            "{download}"
        );
        assert_eq!(
            view.config_download(Some("not a uuid")).unwrap(),
            configured.config_yml
        );
        assert!(
            view.m1studio_line
                .starts_with("m1studio configure m1 --architecture M1")
        );
        assert!(
            view.tpaexec_line
                .starts_with("tpaexec configure m1 --architecture M1")
        );
    }

    #[test]
    fn errors_come_first_and_are_found_by_field() {
        let draft = Draft {
            enable_haproxy: true,
            location_names: Some(vec!["main".into(), "Main".into()]),
            ..Draft::starter()
        };
        let view = View::of(&draft);
        assert!(view.configured.is_none());
        assert!(view.svg.is_none());
        assert_eq!(view.diagnostics[0].severity, Severity::Error);
        assert_eq!(view.about("enable_haproxy").count(), 1);
        assert_eq!(
            view.about("location_names").count(),
            1,
            "location_names[1] belongs to location_names"
        );
        assert_eq!(view.about("location").count(), 0);
    }
}
