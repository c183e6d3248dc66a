//! Diagnostics: every problem the model finds is data (`path`, `code`, `severity`, `message`),
//! the same in the CLI, the API and the browser.

use serde::{Deserialize, Serialize};
use std::fmt;

/// How serious a diagnostic is. Only errors stop a design from being used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The design cannot be configured or deployed as it is.
    Error,
    /// The design works, but probably not as the user wants.
    Warning,
    /// An explanation of something the model decided.
    Info,
}

impl Severity {
    /// The lowercase name used in messages and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

macro_rules! codes {
    ($($variant:ident => $text:literal,)*) => {
        /// A stable identifier for each kind of diagnostic. The text form never changes once released.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Code { $($variant,)* }

        impl Code {
            /// Every code, in declaration order.
            pub const ALL: &'static [Code] = &[$(Code::$variant,)*];

            /// The stable kebab-case text of the code.
            pub fn as_str(self) -> &'static str {
                match self { $(Code::$variant => $text,)* }
            }

            /// The code with this text, if any.
            pub fn from_text(text: &str) -> Option<Code> {
                match text { $($text => Some(Code::$variant),)* _ => None }
            }
        }
    };
}

codes! {
    ArchitectureMissing => "architecture-missing",
    ArchitectureUnsupported => "architecture-unsupported",
    ClusterNameInvalid => "cluster-name-invalid",
    FlavourMissing => "flavour-missing",
    FlavourConflict => "flavour-conflict",
    FlavourUnknown => "flavour-unknown",
    VersionMissing => "version-missing",
    VersionInvalid => "version-invalid",
    VersionOutOfRange => "version-out-of-range",
    VersionEndOfLife => "version-end-of-life",
    FailoverManagerMissing => "failover-manager-missing",
    FailoverManagerConflict => "failover-manager-conflict",
    FailoverManagerUnknown => "failover-manager-unknown",
    HaproxyNeedsPatroni => "haproxy-needs-patroni",
    DcsNeedsPatroni => "dcs-needs-patroni",
    DcsUnsupported => "dcs-unsupported",
    RedwoodMissing => "redwood-missing",
    RedwoodNeedsEpas => "redwood-needs-epas",
    RedwoodConflict => "redwood-conflict",
    RepmgrEpasTooOld => "repmgr-epas-too-old",
    PlatformUnknown => "platform-unknown",
    AwsOnlyOption => "aws-only-option",
    RegionUnknown => "region-unknown",
    InstanceTypeInvalid => "instance-type-invalid",
    DistributionUnsupported => "distribution-unsupported",
    OsVersionUnsupported => "os-version-unsupported",
    CascadedReplicasInvalid => "cascaded-replicas-invalid",
    CascadedReplicasOutOfRange => "cascaded-replicas-out-of-range",
    LocationNamesCount => "location-names-count",
    LocationNameInvalid => "location-name-invalid",
    LocationNameDuplicate => "location-name-duplicate",
    OwnerInvalid => "owner-invalid",
    NetworkInvalid => "network-invalid",
    NetworkNotPrivate => "network-not-private",
    NetworkTooSmall => "network-too-small",
    NetworkNotOnBare => "network-not-on-bare",
    HostnamesTooFew => "hostnames-too-few",
    HostnamesExtra => "hostnames-extra",
    HostnameInvalid => "hostname-invalid",
    HostnameDuplicate => "hostname-duplicate",
    HostnamesFileUnreadable => "hostnames-file-unreadable",
    AddressInvalid => "address-invalid",
    AddressDuplicate => "address-duplicate",
    AddressesNotOnPlatform => "addresses-not-on-platform",
    WitnessOnBarman => "witness-on-barman",
    EtcdQuorum => "etcd-quorum",
    EdbTokenNeeded => "edb-token-needed",
    AsyncDataLoss => "async-data-loss",
    SynchronousTradeOff => "synchronous-trade-off",
    OptionUnknown => "option-unknown",
    OptionValueMissing => "option-value-missing",
    OptionRepeated => "option-repeated",
    ArgumentUnexpected => "argument-unexpected",
    ClusterDirMissing => "cluster-dir-missing",
    CommandLineInvalid => "command-line-invalid",
    LinkVersionMissing => "link-version-missing",
    LinkVersionUnsupported => "link-version-unsupported",
    LinkParameterUnknown => "link-parameter-unknown",
    LinkParameterIgnored => "link-parameter-ignored",
    LinkTooLong => "link-too-long",
    ConfigSyntax => "config-syntax",
    ConfigTooLarge => "config-too-large",
    ConfigTooDeep => "config-too-deep",
    ConfigMissingKey => "config-missing-key",
    ConfigWrongType => "config-wrong-type",
    ConfigPrimaryCount => "config-primary-count",
    ConfigUpstreamUnknown => "config-upstream-unknown",
    ConfigUpstreamCycle => "config-upstream-cycle",
    ConfigBackupNotBarman => "config-backup-not-barman",
    ConfigWitnessNoUpstream => "config-witness-no-upstream",
    ConfigRoleUnknown => "config-role-unknown",
    ConfigDuplicateName => "config-duplicate-name",
    ConfigDuplicateNode => "config-duplicate-node",
    ConfigLocationUnknown => "config-location-unknown",
    ConfigLayoutDiffers => "config-layout-differs",
    ConfigRoleIgnored => "config-role-ignored",
    ConfigOneLocation => "config-one-location",
    PlacementInvalid => "placement-invalid",
    PlacementDiffers => "placement-differs",
    KeyringBackendUnknown => "keyring-backend-unknown",
    VaultNameInvalid => "vault-name-invalid",
    VolumeSizeInvalid => "volume-size-invalid",
    OptionIgnored => "option-ignored",
    OptionUnsupported => "option-unsupported",
    LinkRenumbered => "link-renumbered",
    NumberingBarmanLast => "numbering-barman-last",
    DeployUnsupported => "deploy-unsupported",
    DrillInvalid => "drill-invalid",
    DrillNotNow => "drill-not-now",
    HostNotReady => "host-not-ready",
    NetworkTaken => "network-taken",
    NameInvalid => "name-invalid",
    ScenarioInvalid => "scenario-invalid",
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Code {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Code::from_text(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown diagnostic code {text}")))
    }
}

/// One problem or explanation, attached to the field it is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diagnostic {
    /// The field the diagnostic is about, as a dotted path (`failover_manager`,
    /// `location_names[1]`, `instances[2].upstream`).
    pub path: String,
    /// The stable code of the rule.
    pub code: Code,
    /// How serious it is.
    pub severity: Severity,
    /// What is wrong and how to fix it, naming the option.
    pub message: String,
}

impl Diagnostic {
    /// A diagnostic of any severity.
    pub fn new(
        severity: Severity,
        path: impl Into<String>,
        code: Code,
        message: impl Into<String>,
    ) -> Self {
        Diagnostic {
            path: path.into(),
            code,
            severity,
            message: message.into(),
        }
    }

    /// An error.
    pub fn error(path: impl Into<String>, code: Code, message: impl Into<String>) -> Self {
        Self::new(Severity::Error, path, code, message)
    }

    /// A warning.
    pub fn warning(path: impl Into<String>, code: Code, message: impl Into<String>) -> Self {
        Self::new(Severity::Warning, path, code, message)
    }

    /// An explanation.
    pub fn info(path: impl Into<String>, code: Code, message: impl Into<String>) -> Self {
        Self::new(Severity::Info, path, code, message)
    }

    /// Whether this diagnostic stops the design.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}[{}] {}: {}",
            self.severity.as_str(),
            self.code,
            self.path,
            self.message
        )
    }
}

/// Whether any of the diagnostics is an error.
pub fn has_errors(diagnostics: &[Diagnostic]) -> bool {
    diagnostics.iter().any(Diagnostic::is_error)
}

/// How many diagnostics of one code and severity are given, before the rest are counted.
pub const SAME_KIND_SHOWN: usize = 20;

/// `diagnostics`, with at most [`SAME_KIND_SHOWN`] of each code and severity: past them, one
/// more says how many like them there were, at the first left out. A file of 150,000 bad
/// names gets twenty messages and a count, not 150,000 messages.
pub fn cap_repeats(diagnostics: Vec<Diagnostic>) -> Vec<Diagnostic> {
    let mut counts: std::collections::HashMap<(Code, Severity), usize> =
        std::collections::HashMap::new();
    let mut kept = Vec::with_capacity(diagnostics.len().min(256));
    let mut first_left_out: Vec<(Code, Severity, String)> = Vec::new();
    for diagnostic in diagnostics {
        let count = counts
            .entry((diagnostic.code, diagnostic.severity))
            .or_default();
        *count += 1;
        if *count <= SAME_KIND_SHOWN {
            kept.push(diagnostic);
        } else if *count == SAME_KIND_SHOWN + 1 {
            first_left_out.push((diagnostic.code, diagnostic.severity, diagnostic.path));
        }
    }
    for (code, severity, path) in first_left_out {
        let more = counts[&(code, severity)] - SAME_KIND_SHOWN;
        kept.push(Diagnostic::new(
            severity,
            path,
            code,
            format!(
                "… and {more} more like the {SAME_KIND_SHOWN} above ({}), from here on: fix those, then check again",
                code.as_str()
            ),
        ));
    }
    kept
}
