//! The licence of a model's weights as an SPDX id, and whether it lets a province ship the model in
//! a product.
//!
//! A commissioning installer cannot read model licences; `check` reads them instead. Only
//! permissive licences ship; copyleft ones (AGPL: a network service must publish its source and
//! weights), non-commercial ones, a licence nobody stated (`NOASSERTION`) and custom terms
//! (`LicenseRef-…`) need someone to clear the rights first.

use std::fmt;

/// Permissive licences: the weights may go into a product as they are.
const PERMISSIVE: &[&str] = &[
    "0BSD",
    "Apache-2.0",
    "BSD-2-Clause",
    "BSD-3-Clause",
    "CC-BY-4.0",
    "CC0-1.0",
    "ISC",
    "MIT",
    "MIT-0",
    "Unlicense",
    "Zlib",
];

/// Known licences whose terms a product cannot meet without clearing the rights.
const RESTRICTED: &[&str] = &[
    "AGPL-3.0-only",
    "AGPL-3.0-or-later",
    "CC-BY-NC-4.0",
    "CC-BY-NC-SA-4.0",
    "CC-BY-SA-4.0",
    "GPL-2.0-only",
    "GPL-2.0-or-later",
    "GPL-3.0-only",
    "GPL-3.0-or-later",
    "LGPL-3.0-only",
    "OpenRAIL",
];

/// SPDX's value for "no licence was stated".
const NOT_STATED: &str = "NOASSERTION";

/// What a licence allows, for shipping the weights in a product.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shipping {
    /// Permissive: may ship.
    Allowed,
    /// Copyleft or non-commercial terms a product cannot meet as is.
    Restricted,
    /// Nobody stated a licence: no right to use it at all.
    NotStated,
    /// Custom terms (`LicenseRef-…`): someone has to read them.
    Custom,
}

impl Shipping {
    /// Whether a product may ship weights under this licence without clearing rights.
    pub fn may_ship(self) -> bool {
        self == Shipping::Allowed
    }

    /// Why not, in a few words.
    pub fn reason(self) -> &'static str {
        match self {
            Shipping::Allowed => "permissive",
            Shipping::Restricted => "copyleft or non-commercial terms a product cannot meet",
            Shipping::NotStated => "no licence was stated",
            Shipping::Custom => "custom terms nobody here has cleared",
        }
    }
}

impl fmt::Display for Shipping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Shipping::Allowed => "may ship",
            _ => "may not ship",
        })
    }
}

/// What `spdx` allows; `Err` names what is wrong with an id that is none of the known ones.
pub fn shipping(spdx: &str) -> Result<Shipping, String> {
    if PERMISSIVE.contains(&spdx) {
        Ok(Shipping::Allowed)
    } else if RESTRICTED.contains(&spdx) {
        Ok(Shipping::Restricted)
    } else if spdx == NOT_STATED {
        Ok(Shipping::NotStated)
    } else if let Some(rest) = spdx.strip_prefix("LicenseRef-")
        && !rest.is_empty()
        && rest
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
    {
        Ok(Shipping::Custom)
    } else {
        Err(format!(
            "licence `{spdx}` is not an SPDX id this agent knows: use one of {}, {}, `{NOT_STATED}` when none was stated, or `LicenseRef-NAME` for custom terms, and explain in licence_note",
            PERMISSIVE.join(", "),
            RESTRICTED.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permissive_ids_ship_and_the_rest_do_not() {
        assert_eq!(shipping("Apache-2.0"), Ok(Shipping::Allowed));
        assert_eq!(shipping("MIT"), Ok(Shipping::Allowed));
        assert_eq!(shipping("AGPL-3.0-only"), Ok(Shipping::Restricted));
        assert_eq!(shipping("NOASSERTION"), Ok(Shipping::NotStated));
        assert_eq!(shipping("LicenseRef-Vendor-EULA"), Ok(Shipping::Custom));
        for s in [Shipping::Restricted, Shipping::NotStated, Shipping::Custom] {
            assert!(!s.may_ship(), "{s:?}");
        }
        assert!(Shipping::Allowed.may_ship());
    }

    #[test]
    fn free_text_and_deprecated_ids_are_refused_with_the_way_out() {
        for bad in [
            "AGPL-3.0",
            "apache 2",
            "none stated; test fixture only",
            "LicenseRef-",
            "",
        ] {
            let e = shipping(bad).expect_err(bad);
            assert!(
                e.contains("NOASSERTION") && e.contains("LicenseRef-"),
                "{e}"
            );
        }
    }
}
