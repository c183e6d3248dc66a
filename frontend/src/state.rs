//! The designer's state: the draft being edited and the notices of the link it was opened
//! from. `reduce` is pure, so every edit is tested natively.

use m1studio_shared::{Diagnostic, Draft, FailoverManager, Flavour, Platform, link};
use std::rc::Rc;
use yew::Reducible;

/// A text field of the design.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// The cluster's name.
    Name,
    /// The Postgres flavour.
    Flavour,
    /// The Postgres major version.
    Version,
    /// The failover manager.
    Failover,
    /// The platform.
    Platform,
    /// The AWS region.
    Region,
    /// The EC2 instance type.
    InstanceType,
    /// The operating system.
    Distribution,
    /// Its version.
    OsVersion,
    /// How many cascaded replicas.
    Cascaded,
    /// The first location's name.
    FirstLocation,
    /// The second location's name.
    SecondLocation,
    /// The owner tag.
    Owner,
    /// The address range.
    Network,
}

/// An edit of the design.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Set a text field to what the user typed or chose.
    Set(Field, String),
    /// Turn HAProxy on or off.
    Haproxy(bool),
    /// Turn synchronous replication on or off.
    Synchronous(bool),
    /// Choose EDB Postgres Advanced Server's mode (`None`: not chosen yet).
    Redwood(Option<bool>),
    /// Set the host names, as typed: one a line (empty: the designer's names).
    Hostnames(String),
    /// Open the design a link describes.
    OpenLink(String),
    /// Start again from the starter design.
    Reset,
    /// Hide the notices about the link.
    DismissNotices,
}

/// What the designer holds.
#[derive(Debug, Clone, PartialEq)]
pub struct DesignState {
    /// The design as the user has it.
    pub draft: Draft,
    /// What the link the design came from had that could not be used.
    pub notices: Vec<Diagnostic>,
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
            hostnames_text,
        }
    }
}

/// An empty text means "not given", so the default applies.
fn given(value: String) -> Option<String> {
    let trimmed = value.trim();
    (!trimmed.is_empty()).then(|| trimmed.to_string())
}

/// Applies `action` to `draft`, keeping options that no longer apply out of the draft
/// (an AWS region after leaving aws, a DCS after leaving Patroni, a Redwood mode after leaving EPAS).
/// HAProxy stays, so that the user sees why it needs Patroni.
pub fn apply(draft: &mut Draft, field: Field, value: String) {
    match field {
        Field::Name => draft.cluster_name = value.trim().to_string(),
        Field::Flavour => {
            draft.postgres_flavour = given(value);
            if draft.postgres_flavour.as_deref() != Some(Flavour::Epas.as_str()) {
                draft.redwood = None;
            }
        }
        Field::Version => draft.postgres_version = given(value),
        Field::Failover => {
            draft.failover_manager = given(value);
            if draft.failover_manager.as_deref() != Some(FailoverManager::Patroni.as_str()) {
                draft.patroni_dcs = None;
            }
        }
        Field::Platform => {
            draft.platform = given(value);
            if draft
                .platform
                .as_deref()
                .is_some_and(|p| p != Platform::Aws.as_str())
            {
                draft.region = None;
                draft.instance_type = None;
            }
            if draft.platform.as_deref() == Some(Platform::Bare.as_str()) {
                draft.network = None;
            }
            if draft.platform.as_deref() == Some(Platform::Docker.as_str())
                && draft.distribution.as_deref().is_some_and(|d| d != "Debian")
            {
                draft.distribution = None;
                draft.os_version = None;
            }
        }
        Field::Region => draft.region = given(value),
        Field::InstanceType => draft.instance_type = given(value),
        Field::Distribution => {
            draft.distribution = given(value);
            draft.os_version = None;
        }
        Field::OsVersion => draft.os_version = given(value),
        Field::Cascaded => draft.num_cascaded_replicas = Some(value.trim().to_string()),
        Field::FirstLocation | Field::SecondLocation => {
            let at = usize::from(field == Field::SecondLocation);
            let mut names = draft.location_names.clone().unwrap_or_else(|| {
                m1studio_shared::spec::DEFAULT_LOCATIONS
                    .map(String::from)
                    .to_vec()
            });
            names.resize(2, String::new());
            names[at] = value.trim().to_string();
            draft.location_names = Some(names);
        }
        Field::Owner => draft.owner = given(value),
        Field::Network => draft.network = given(value),
    }
}

impl Reducible for DesignState {
    type Action = Action;

    fn reduce(self: Rc<Self>, action: Action) -> Rc<Self> {
        let mut next = (*self).clone();
        match action {
            Action::Set(field, value) => apply(&mut next.draft, field, value),
            Action::Haproxy(on) => next.draft.enable_haproxy = on,
            Action::Synchronous(on) => next.draft.synchronous = on,
            Action::Redwood(mode) => next.draft.redwood = mode,
            Action::Hostnames(text) => {
                let names = m1studio_shared::hostnames::parse_hostnames_file(&text);
                next.draft.hostnames = (!names.is_empty()).then_some(names);
                next.hostnames_text = text;
            }
            Action::OpenLink(text) => next = DesignState::from_link(&text),
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
            DesignState::from_link("#v=1&name=lab&pg=17&fm=patroni&platform=docker&color=red");
        assert_eq!(state.draft.cluster_name, "lab");
        assert_eq!(state.notices.len(), 1);
        let state = reduce(state, vec![Action::DismissNotices]);
        assert!(state.notices.is_empty());
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
                Action::Haproxy(true),
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
                Action::Redwood(Some(true)),
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
