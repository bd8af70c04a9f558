//! The words every layer uses about a job's record: where the job is in its life
//! ([`JobState`]) and what an allocation holds ([`AllocationKind`]). The state store keeps them,
//! the executor moves a job through them, and the batch-system flows above the facade read them
//! — so they live here, below all three, and no layer reaches into another for a word.
//! [`text_enum!`] gives each its one spelling in the state file and in JSON.

use serde::Serialize;
use std::fmt;

#[macro_export]
#[doc(hidden)]
macro_rules! text_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $v:ident => $s:literal),* $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vm])* $v),* }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$v),*];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$v => $s),* }
            }

            pub fn parse(text: &str) -> Option<Self> {
                match text { $($s => Some($name::$v),)* _ => None }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.pad(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
    };
}
pub use crate::text_enum;

text_enum!(
    /// Where a job is in its life.
    JobState {
        Applying => "applying",
        Up => "up",
        RollingBack => "rolling-back",
        TearingDown => "tearing-down",
        /// Undoing failed: the journal and allocation are kept for `down`/`recover`.
        FailedRollback => "failed-rollback",
        Down => "down",
    }
);

impl JobState {
    /// A process is (or was, if it died) changing devices for the job.
    pub fn in_progress(self) -> bool {
        matches!(
            self,
            JobState::Applying | JobState::RollingBack | JobState::TearingDown
        )
    }
}

text_enum!(
    /// What an allocation holds.
    AllocationKind {
        Vlan => "vlan",
        PKey => "pkey",
        /// The index of a job's subnet in the site's address pool.
        Subnet => "subnet",
    }
);
