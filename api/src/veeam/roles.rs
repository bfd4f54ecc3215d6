//! Enterprise Manager roles. Portal Administrators may start and stop jobs and sessions; the
//! other roles may read (EM answers them 403 "Access denied" for those actions). Stored as the
//! user's `role` text; a role this face does not know may only read.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    PortalAdministrator,
    PortalUser,
    RestoreOperator,
}

const ALL: [Role; 3] = [Role::PortalAdministrator, Role::PortalUser, Role::RestoreOperator];

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::PortalAdministrator => "PortalAdministrator",
            Role::PortalUser => "PortalUser",
            Role::RestoreOperator => "RestoreOperator",
        }
    }

    /// Whether a user with this stored role may start and stop.
    pub fn may_operate(stored: &str) -> bool {
        stored == Role::PortalAdministrator.as_str()
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        ALL.into_iter()
            .find(|role| role.as_str().eq_ignore_ascii_case(text))
            .ok_or_else(|| format!("unknown role {text:?}: use PortalAdministrator, PortalUser or RestoreOperator"))
    }
}

#[cfg(test)]
mod tests {
    use super::Role;

    #[test]
    fn only_portal_administrators_operate_and_roles_parse_in_any_case() {
        assert!(Role::may_operate("PortalAdministrator"));
        for stored in ["PortalUser", "RestoreOperator", "portaladministrator", "", "Admin"] {
            assert!(!Role::may_operate(stored), "{stored}");
        }
        assert_eq!("restoreoperator".parse::<Role>(), Ok(Role::RestoreOperator));
        assert!("root".parse::<Role>().is_err());
    }
}
