//! The designer's state: the draft being edited and the notices of the link it was opened
//! from. `reduce` is pure, so every edit is tested natively; what an edit does to the draft
//! (and what it drops) is `Draft::set`'s, in the shared crate.

use m1studio_shared::{Diagnostic, Draft, Field, link};
use std::rc::Rc;
use yew::Reducible;

/// An edit of the design.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Set a field to what the user typed or chose (`Draft::set`: switches are `on` or `off`).
    Set(Field, String),
    /// Set the host names, as typed: one a line (empty: the designer's names).
    Hostnames(String),
    /// Open the design a link describes.
    OpenLink(String),
    /// Open the design the server read from a config.yml (dropped or pasted: TPA's own, or
    /// m1studio's), with what its reader said; no design when the file has errors.
    OpenRead(Box<Option<Draft>>, Vec<Diagnostic>),
    /// Start again from the starter design.
    Reset,
    /// Hide the notices about the link.
    DismissNotices,
}

/// Where the notices shown above the design come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeSource {
    /// The link the page was opened at.
    Link,
    /// A config.yml that opened as the design.
    Config,
    /// A config.yml that could not be opened: the design is unchanged.
    ConfigRefused,
}

/// What the designer holds.
#[derive(Debug, Clone, PartialEq)]
pub struct DesignState {
    /// The design as the user has it.
    pub draft: Draft,
    /// What the link or config.yml the design came from had that could not be used, or that
    /// leaves the M1 layout.
    pub notices: Vec<Diagnostic>,
    /// Where the notices come from.
    pub source: NoticeSource,
    /// The host names as typed, one a line (the draft holds them parsed).
    pub hostnames_text: String,
}

impl DesignState {
    /// The state for a page opened at link text `fragment` (empty: the starter design).
    pub fn from_link(fragment: &str) -> DesignState {
        if fragment.trim_start_matches(['#', '?']).trim().is_empty() {
            return DesignState {
                draft: Draft::starter(),
                notices: Vec::new(),
                source: NoticeSource::Link,
                hostnames_text: String::new(),
            };
        }
        let (draft, notices) = link::decode(fragment);
        let hostnames_text = draft
            .hostnames
            .as_ref()
            .map(|names| names.join("\n"))
            .unwrap_or_default();
        DesignState {
            draft,
            notices,
            source: NoticeSource::Link,
            hostnames_text,
        }
    }

    /// This state with the design read from a config.yml opened, its reader's warnings as the
    /// notices; or, when the file has errors, the design unchanged and the errors as notices.
    pub fn with_read(&self, draft: Option<Draft>, diagnostics: Vec<Diagnostic>) -> DesignState {
        let notices: Vec<Diagnostic> = diagnostics
            .into_iter()
            .filter(|d| d.severity != m1studio_shared::Severity::Info)
            .collect();
        match draft {
            Some(draft) => DesignState {
                hostnames_text: draft
                    .hostnames
                    .as_ref()
                    .map(|names| names.join("\n"))
                    .unwrap_or_default(),
                draft,
                notices,
                source: NoticeSource::Config,
            },
            None => DesignState {
                notices,
                source: NoticeSource::ConfigRefused,
                ..self.clone()
            },
        }
    }
}

impl Reducible for DesignState {
    type Action = Action;

    fn reduce(self: Rc<Self>, action: Action) -> Rc<Self> {
        let mut next = (*self).clone();
        match action {
            Action::Set(field, value) => next.draft.set(field, &value),
            Action::Hostnames(text) => {
                let names = m1studio_shared::hostnames::parse_hostnames_file(&text);
                next.draft.hostnames = (!names.is_empty()).then_some(names);
                next.hostnames_text = text;
            }
            Action::OpenLink(text) => next = DesignState::from_link(&text),
            Action::OpenRead(draft, diagnostics) => next = self.with_read(*draft, diagnostics),
            Action::Reset => next = DesignState::from_link(""),
            Action::DismissNotices => next.notices.clear(),
        }
        if next == *self { self } else { Rc::new(next) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reduce(state: DesignState, actions: Vec<Action>) -> DesignState {
        let mut state = Rc::new(state);
        for action in actions {
            state = state.reduce(action);
        }
        (*state).clone()
    }

    fn starter() -> DesignState {
        DesignState::from_link("")
    }

    #[test]
    fn an_empty_link_opens_the_starter_design() {
        assert_eq!(starter().draft, Draft::starter());
        assert!(starter().notices.is_empty());
    }

    #[test]
    fn a_link_opens_its_design_with_notices_for_what_was_ignored() {
        let state =
            DesignState::from_link("#v=2&name=lab&pg=17&fm=patroni&platform=docker&color=red");
        assert_eq!(state.draft.cluster_name, "lab");
        assert_eq!(state.notices.len(), 1);
        let state = reduce(state, vec![Action::DismissNotices]);
        assert!(state.notices.is_empty());
    }

    #[test]
    fn a_tpa_config_yml_opens_as_its_design_with_the_readers_warnings() {
        let text = include_str!("../../shared/tests/fixtures/tpa/legacy-docker-repmgr-c2.yml");
        let (draft, diagnostics) = m1studio_shared::config::read(text);
        let state = reduce(
            starter(),
            vec![Action::OpenRead(Box::new(draft), diagnostics)],
        );
        assert_eq!(state.source, NoticeSource::Config);
        assert_eq!(state.draft.cluster_name, "legacy-docker-repmgr-c2");
        assert_eq!(state.draft.num_cascaded_replicas.as_deref(), Some("2"));
        assert!(
            state
                .hostnames_text
                .starts_with("kinship\nunicorn\nkiller\n")
        );
        let codes: Vec<&str> = state.notices.iter().map(|d| d.code.as_str()).collect();
        assert!(codes.contains(&"placement-differs"), "{codes:?}");
        assert!(codes.contains(&"config-role-ignored"), "{codes:?}");
        // The link carries the design, never the vault.
        let link = m1studio_shared::link::encode(&state.draft);
        assert!(link.ends_with("&at=00011"), "{link}");
        assert!(!link.contains("vault"), "{link}");
    }

    #[test]
    fn a_broken_config_yml_leaves_the_design_and_says_why() {
        let (draft, diagnostics) =
            m1studio_shared::config::read("architecture: M1\ninstances: [\n");
        let state = reduce(
            starter(),
            vec![Action::OpenRead(Box::new(draft), diagnostics)],
        );
        assert_eq!(state.source, NoticeSource::ConfigRefused);
        assert_eq!(state.draft, Draft::starter());
        assert_eq!(state.notices[0].code.as_str(), "config-syntax");
    }

    #[test]
    fn leaving_aws_drops_the_aws_options() {
        let state = reduce(
            starter(),
            vec![
                Action::Set(Field::Platform, "aws".into()),
                Action::Set(Field::Region, "us-east-2".into()),
                Action::Set(Field::InstanceType, "m6i.large".into()),
                Action::Set(Field::Platform, "bare".into()),
            ],
        );
        assert_eq!(state.draft.region, None);
        assert_eq!(state.draft.instance_type, None);
        assert_eq!(state.draft.platform.as_deref(), Some("bare"));
    }

    #[test]
    fn haproxy_stays_when_patroni_is_left_so_its_error_shows() {
        let state = reduce(
            starter(),
            vec![
                Action::Set(Field::Failover, "patroni".into()),
                Action::Set(Field::Haproxy, "on".into()),
                Action::Set(Field::Failover, "repmgr".into()),
            ],
        );
        assert!(state.draft.enable_haproxy);
        let (_, diagnostics) = m1studio_shared::validate(&state.draft);
        assert!(
            diagnostics
                .iter()
                .any(|d| d.code.as_str() == "haproxy-needs-patroni")
        );
    }

    #[test]
    fn redwood_is_dropped_when_leaving_epas() {
        let state = reduce(
            starter(),
            vec![
                Action::Set(Field::Flavour, "epas".into()),
                Action::Set(Field::Redwood, "on".into()),
                Action::Set(Field::Flavour, "postgresql".into()),
            ],
        );
        assert_eq!(state.draft.redwood, None);
    }

    #[test]
    fn location_names_are_edited_one_at_a_time() {
        let state = reduce(
            starter(),
            vec![Action::Set(Field::SecondLocation, " west ".into())],
        );
        assert_eq!(
            state.draft.location_names,
            Some(vec!["main".to_string(), "west".to_string()])
        );
    }

    #[test]
    fn empty_text_means_the_default() {
        let state = reduce(
            starter(),
            vec![
                Action::Set(Field::Owner, "jane".into()),
                Action::Set(Field::Owner, "  ".into()),
            ],
        );
        assert_eq!(state.draft.owner, None);
        let state = reduce(starter(), vec![Action::Set(Field::Cascaded, "".into())]);
        assert_eq!(
            state.draft.num_cascaded_replicas.as_deref(),
            Some(""),
            "an emptied count is shown as an error, not defaulted"
        );
    }

    #[test]
    fn host_names_are_typed_one_a_line_and_emptied_back_to_the_defaults() {
        let state = reduce(starter(), vec![Action::Hostnames("alpha\nbravo\n".into())]);
        assert_eq!(
            state.draft.hostnames,
            Some(vec!["alpha".to_string(), "bravo".to_string()])
        );
        assert_eq!(
            state.hostnames_text, "alpha\nbravo\n",
            "the text keeps what was typed"
        );
        let state = reduce(state, vec![Action::Hostnames(" \n".into())]);
        assert_eq!(state.draft.hostnames, None);
        let opened = DesignState::from_link("v=1&name=m1&host=a&host=b");
        assert_eq!(opened.hostnames_text, "a\nb");
    }

    #[test]
    fn an_edit_that_changes_nothing_keeps_the_same_state() {
        let state = Rc::new(starter());
        let same = state
            .clone()
            .reduce(Action::Set(Field::Failover, "repmgr".into()));
        assert!(Rc::ptr_eq(&state, &same));
    }

    #[test]
    fn reset_and_open_link_replace_the_design() {
        let state = reduce(
            starter(),
            vec![Action::Set(Field::Cascaded, "5".into()), Action::Reset],
        );
        assert_eq!(state.draft, Draft::starter());
        let state = reduce(
            state,
            vec![Action::OpenLink("v=1&name=x&pg=16&fm=efm".into())],
        );
        assert_eq!(state.draft.failover_manager.as_deref(), Some("efm"));
    }
}
