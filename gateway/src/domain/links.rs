//! Invite links: admins and the owner make, list and revoke them; anyone
//! holding a code joins the room with it. The rules (who may, expiry, uses,
//! bans, the per-room bound) are user-service's; this checks the input's
//! shape and forwards.

use proto::user::v1 as user_pb;

use super::{Error, error::USER_SERVICE, rooms::Rooms};

fn check_code(code: &str) -> Result<(), Error> {
    chat_model::ids::check_invite_code(code).map_err(|e| Error::Invalid(e.to_string()))
}

/// A link id: a positive integer.
pub fn parse_link_id(id: &str) -> Result<i64, Error> {
    id.parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| Error::Invalid("a link id is a positive integer".into()))
}

impl Rooms {
    pub async fn create_link(
        &self,
        req: user_pb::CreateInviteLinkRequest,
    ) -> Result<user_pb::InviteLink, Error> {
        super::rooms::check_name(&req.room)?;
        Ok(self
            .users()
            .create_invite_link(req)
            .await
            .map_err(Error::upstream(USER_SERVICE))?
            .into_inner())
    }

    pub async fn links(
        &self,
        actor: String,
        room: String,
    ) -> Result<Vec<user_pb::InviteLink>, Error> {
        super::rooms::check_name(&room)?;
        Ok(self
            .users()
            .list_invite_links(user_pb::RoomActorRequest {
                room,
                actor,
                after: String::new(),
            })
            .await
            .map_err(Error::upstream(USER_SERVICE))?
            .into_inner()
            .links)
    }

    pub async fn revoke_link(&self, actor: String, room: String, id: i64) -> Result<(), Error> {
        super::rooms::check_name(&room)?;
        self.users()
            .revoke_invite_link(user_pb::RevokeInviteLinkRequest { room, actor, id })
            .await
            .map_err(Error::upstream(USER_SERVICE))?;
        Ok(())
    }

    /// `user` joins the room of `code`; the room, with their role.
    pub async fn use_link(&self, user: String, code: String) -> Result<user_pb::Room, Error> {
        check_code(&code)?;
        self.membership_change(&user).await?;
        Ok(self
            .users()
            .use_invite_link(user_pb::UseInviteLinkRequest {
                code,
                username: user,
            })
            .await
            .map_err(Error::upstream(USER_SERVICE))?
            .into_inner())
    }
}
