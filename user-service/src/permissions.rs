//! Who may do what in a room: the one table every room action is checked
//! against (docs/protocol.md, "Roles and permissions").
//!
//! | action | owner | admin | member |
//! |---|---|---|---|
//! | invite (users, and invite links) | yes | yes | no |
//! | kick, ban, unban, mute, unmute | yes | members only | no |
//! | make admin or member | yes | no | no |
//! | transfer ownership | yes | no | no |
//! | change settings (display name, topic, visibility, slow mode) | yes | yes | no |
//! | delete others' messages | yes | yes | no |
//! | read the moderation log and the bans | yes | yes | no |
//! | delete the room | yes | no | no |

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Member,
    Admin,
    Owner,
}

impl Role {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "owner" => Some(Self::Owner),
            "admin" => Some(Self::Admin),
            "member" => Some(Self::Member),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Admin => "admin",
            Self::Member => "member",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Invite,
    /// Kick, ban, unban, mute, unmute: acts on another user.
    Moderate,
    SetRole,
    Transfer,
    ChangeSettings,
    DeleteOthersMessages,
    ReadModeration,
    DeleteRoom,
}

/// Whether `actor` may take `action`, on `target` (that user's role in
/// the room, None when not a member) where the action has one.
pub fn allowed(actor: Role, action: Action, target: Option<Role>) -> bool {
    use Action::*;
    match action {
        Invite | ChangeSettings | DeleteOthersMessages | ReadModeration => actor >= Role::Admin,
        // An admin acts on plain members and on non-members (a ban of
        // someone who left); nobody acts on the owner.
        Moderate => match actor {
            Role::Owner => target != Some(Role::Owner),
            Role::Admin => matches!(target, None | Some(Role::Member)),
            Role::Member => false,
        },
        SetRole | Transfer | DeleteRoom => actor == Role::Owner,
    }
}

#[cfg(test)]
mod tests {
    use super::{Action::*, Role::*, allowed};

    #[test]
    fn the_table() {
        for action in [Invite, ChangeSettings, DeleteOthersMessages, ReadModeration] {
            assert!(allowed(Owner, action, None));
            assert!(allowed(Admin, action, None));
            assert!(!allowed(Member, action, None));
        }
        for action in [SetRole, Transfer, DeleteRoom] {
            assert!(allowed(Owner, action, Some(Member)));
            assert!(!allowed(Admin, action, Some(Member)));
            assert!(!allowed(Member, action, Some(Member)));
        }
        assert!(allowed(Owner, Moderate, Some(Admin)));
        assert!(allowed(Owner, Moderate, Some(Member)));
        assert!(!allowed(Owner, Moderate, Some(Owner)));
        assert!(allowed(Admin, Moderate, Some(Member)));
        assert!(allowed(Admin, Moderate, None));
        assert!(!allowed(Admin, Moderate, Some(Admin)));
        assert!(!allowed(Admin, Moderate, Some(Owner)));
        assert!(!allowed(Member, Moderate, Some(Member)));
    }
}
