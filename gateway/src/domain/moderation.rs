//! Running a room: settings, invites, kicks, bans, mutes, roles, ownership,
//! deletion, the directory of public rooms, and the moderation log. Every
//! rule (who may do what) is user-service's, in one permission table; this
//! checks the input's shape and forwards. An accepted action has bumped the
//! room's membership version before its answer, so every worker enforces it
//! for every send it handles afterwards.

use chat_model::ids::check_username;
use proto::user::v1::{self as user_pb, ModerationAction};

use super::{Error, error::USER_SERVICE, rooms::Rooms};

/// The longest ban or mute given a duration (ten years); longer is "until lifted".
pub const MAX_DURATION_SECS: u64 = 315_360_000;

/// One moderation action, as a route asks for it.
pub struct Action {
    pub kind: ModerationAction,
    pub target: String,
    pub reason: String,
    pub duration_secs: Option<u64>,
    pub role: String,
}

fn check_user(user: &str) -> Result<(), Error> {
    check_username(user).map_err(|e| Error::Invalid(e.to_string()))
}

impl Rooms {
    /// Changes the settings `req` names (its `actor` the caller).
    pub async fn update(&self, req: user_pb::UpdateRoomRequest) -> Result<user_pb::Room, Error> {
        super::rooms::check_name(&req.room)?;
        Ok(self
            .users()
            .update_room(req)
            .await
            .map_err(Error::upstream(USER_SERVICE))?
            .into_inner())
    }

    pub async fn moderate(&self, actor: String, name: String, action: Action) -> Result<(), Error> {
        super::rooms::check_name(&name)?;
        if action.kind != ModerationAction::DeleteRoom {
            check_user(&action.target)?;
        }
        let until_ms = match action.duration_secs {
            None => None,
            Some(s) if (1..=MAX_DURATION_SECS).contains(&s) => {
                Some(chat_model::time::now_ms() + s as i64 * 1000)
            }
            Some(_) => {
                return Err(Error::Invalid(format!(
                    "duration_secs must be 1 to {MAX_DURATION_SECS}"
                )));
            }
        };
        self.users()
            .moderate(user_pb::ModerateRequest {
                room: name,
                actor,
                action: action.kind.into(),
                target: action.target,
                reason: action.reason,
                until_ms,
                role: action.role,
            })
            .await
            .map_err(Error::upstream(USER_SERVICE))?;
        Ok(())
    }

    pub async fn invite(
        &self,
        actor: String,
        name: String,
        user: String,
    ) -> Result<user_pb::Invitation, Error> {
        super::rooms::check_name(&name)?;
        check_user(&user)?;
        Ok(self
            .users()
            .invite(user_pb::InviteRequest {
                room: name,
                actor,
                username: user,
            })
            .await
            .map_err(Error::upstream(USER_SERVICE))?
            .into_inner())
    }

    /// Accepts (Some(room): joined) or declines `user`'s invite.
    pub async fn answer(
        &self,
        user: String,
        name: String,
        accept: bool,
    ) -> Result<Option<user_pb::Room>, Error> {
        super::rooms::check_name(&name)?;
        if accept {
            self.membership_change(&user).await?;
        }
        Ok(self
            .users()
            .answer_invite(user_pb::AnswerInviteRequest {
                room: name,
                username: user,
                accept,
            })
            .await
            .map_err(Error::upstream(USER_SERVICE))?
            .into_inner()
            .room)
    }

    pub async fn invites(&self, user: String) -> Result<Vec<user_pb::Invitation>, Error> {
        Ok(self
            .users()
            .list_invites(user_pb::ListInvitesRequest { username: user })
            .await
            .map_err(Error::upstream(USER_SERVICE))?
            .into_inner()
            .invites)
    }

    pub async fn directory(
        &self,
        prefix: String,
        after: String,
        limit: u32,
    ) -> Result<user_pb::ListPublicRoomsResponse, Error> {
        Ok(self
            .users()
            .list_public_rooms(user_pb::ListPublicRoomsRequest {
                prefix,
                after,
                limit,
            })
            .await
            .map_err(Error::upstream(USER_SERVICE))?
            .into_inner())
    }

    pub async fn bans(
        &self,
        actor: String,
        name: String,
        after: String,
    ) -> Result<user_pb::ListBansResponse, Error> {
        super::rooms::check_name(&name)?;
        if !after.is_empty() {
            check_user(&after)?;
        }
        Ok(self
            .users()
            .list_bans(user_pb::RoomActorRequest {
                room: name,
                actor,
                after,
            })
            .await
            .map_err(Error::upstream(USER_SERVICE))?
            .into_inner())
    }

    pub async fn moderation_log(
        &self,
        actor: String,
        name: String,
        before: i64,
        limit: u32,
    ) -> Result<user_pb::ListModerationLogResponse, Error> {
        super::rooms::check_name(&name)?;
        Ok(self
            .users()
            .list_moderation_log(user_pb::ListModerationLogRequest {
                room: name,
                actor,
                before,
                limit,
            })
            .await
            .map_err(Error::upstream(USER_SERVICE))?
            .into_inner())
    }
}
