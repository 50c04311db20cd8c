//! The `chat.user.v1.UserService` implementation: validation, then the store.

use chat_model::{
    ids::{self, valid_username},
    limits::MAX_GET_USERS,
};
use proto::user::v1 as user_pb;
use tonic::{Request, Response, Status};

use crate::{
    error::UserError,
    events::MembershipEvents,
    password::{self, Hasher},
    sessions::Sessions,
    store::{RoomRow, Store, UserRow},
};

pub struct UserApi {
    pub(crate) store: Store,
    pub(crate) events: MembershipEvents,
    pub(crate) hasher: Hasher,
    pub(crate) sessions: Sessions,
}

impl UserApi {
    pub fn new(store: Store, events: MembershipEvents, hasher: Hasher, sessions: Sessions) -> Self {
        Self {
            store,
            events,
            hasher,
            sessions,
        }
    }
}

pub const MAX_DISPLAY_NAME: usize = 64;
pub const MAX_TOPIC: usize = 256;

pub(crate) fn check_username(name: &str) -> Result<(), UserError> {
    ids::check_username(name).map_err(|e| UserError::InvalidArgument(e.to_string()))
}

pub(crate) fn check_password(password: &str) -> Result<(), UserError> {
    let chars = password.chars().count();
    if (password::MIN_PASSWORD..=password::MAX_PASSWORD).contains(&chars) {
        Ok(())
    } else {
        Err(UserError::InvalidArgument(format!(
            "password must be {} to {} characters",
            password::MIN_PASSWORD,
            password::MAX_PASSWORD
        )))
    }
}

pub(crate) fn check_display_name(name: &str) -> Result<(), UserError> {
    if name.chars().count() > MAX_DISPLAY_NAME || name.chars().any(char::is_control) {
        Err(UserError::InvalidArgument(format!(
            "display_name must be at most {MAX_DISPLAY_NAME} characters, no control characters"
        )))
    } else {
        Ok(())
    }
}

pub(crate) fn check_room(name: &str) -> Result<(), UserError> {
    ids::check_room_name(name).map_err(|e| UserError::InvalidArgument(e.to_string()))
}

pub(crate) fn check_topic(topic: &str) -> Result<(), UserError> {
    if topic.chars().count() > MAX_TOPIC || topic.chars().any(char::is_control) {
        return Err(UserError::InvalidArgument(format!(
            "topic must be at most {MAX_TOPIC} characters, no control characters"
        )));
    }
    Ok(())
}

pub(crate) fn check_history_visibility(v: &str) -> Result<(), UserError> {
    match v {
        "full" | "since_join" => Ok(()),
        _ => Err(UserError::InvalidArgument(
            "history_visibility must be full or since_join".into(),
        )),
    }
}

pub(crate) fn check_visibility(visibility: &str) -> Result<(), UserError> {
    match visibility {
        "public" | "private" => Ok(()),
        _ => Err(UserError::InvalidArgument(
            "visibility must be public or private".into(),
        )),
    }
}

pub(crate) fn timestamp(t: chrono::DateTime<chrono::Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: t.timestamp_subsec_nanos() as i32,
    }
}

pub(crate) fn user_pb(u: UserRow) -> user_pb::User {
    user_pb::User {
        username: u.username,
        display_name: u.display_name,
        created_at: Some(timestamp(u.created_at)),
    }
}

pub(crate) fn room_pb(r: RoomRow) -> user_pb::Room {
    user_pb::Room {
        name: r.name,
        topic: r.topic,
        created_by: r.created_by,
        created_at: Some(timestamp(r.created_at)),
        role: r.role.unwrap_or_default(),
        visibility: r.visibility,
        member_count: 0,
        slow_mode_secs: u32::try_from(r.slow_mode_secs).unwrap_or(0),
        display_name: r.display_name,
        history_visibility: r.history_visibility,
        history_from_seq: u64::try_from(r.history_from).unwrap_or(0),
    }
}

#[tonic::async_trait]
impl user_pb::user_service_server::UserService for UserApi {
    async fn register(
        &self,
        request: Request<user_pb::RegisterRequest>,
    ) -> Result<Response<user_pb::User>, Status> {
        let req = request.into_inner();
        check_username(&req.username)?;
        check_password(&req.password)?;
        let display_name = req
            .display_name
            .map(|d| d.trim().to_owned())
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| req.username.clone());
        check_display_name(&display_name)?;
        let hash = self.hasher.hash(req.password).await?;
        let user = self
            .store
            .insert_user(&req.username, &display_name, &hash)
            .await?;
        tracing::info!(username = %user.username, "user registered");
        Ok(Response::new(user_pb(user)))
    }

    async fn authenticate(
        &self,
        request: Request<user_pb::AuthenticateRequest>,
    ) -> Result<Response<user_pb::AuthenticateResponse>, Status> {
        let req = request.into_inner();
        // Malformed names and over-long passwords are just wrong credentials:
        // the answer must not tell which usernames exist.
        let stored = if valid_username(&req.username)
            && req.password.chars().count() <= password::MAX_PASSWORD
        {
            self.store.password_hash(&req.username).await?
        } else {
            None
        };
        if !self.hasher.verify(req.password, stored).await? {
            return Err(UserError::BadCredentials.into());
        }
        let session = self
            .sessions
            .open(&req.username, &req.device, &req.client_addr)
            .await?;
        Ok(Response::new(session))
    }

    async fn refresh(
        &self,
        request: Request<user_pb::RefreshRequest>,
    ) -> Result<Response<user_pb::AuthenticateResponse>, Status> {
        Ok(Response::new(self.do_refresh(request.into_inner()).await?))
    }

    async fn list_sessions(
        &self,
        request: Request<user_pb::ListSessionsRequest>,
    ) -> Result<Response<user_pb::ListSessionsResponse>, Status> {
        Ok(Response::new(
            self.do_list_sessions(request.into_inner()).await?,
        ))
    }

    async fn revoke_session(
        &self,
        request: Request<user_pb::RevokeSessionRequest>,
    ) -> Result<Response<user_pb::RevokeSessionsResponse>, Status> {
        Ok(Response::new(
            self.do_revoke_session(request.into_inner()).await?,
        ))
    }

    async fn revoke_all_sessions(
        &self,
        request: Request<user_pb::RevokeAllSessionsRequest>,
    ) -> Result<Response<user_pb::RevokeSessionsResponse>, Status> {
        Ok(Response::new(
            self.do_revoke_all(request.into_inner()).await?,
        ))
    }

    async fn change_password(
        &self,
        request: Request<user_pb::ChangePasswordRequest>,
    ) -> Result<Response<user_pb::RevokeSessionsResponse>, Status> {
        Ok(Response::new(
            self.do_change_password(request.into_inner()).await?,
        ))
    }

    async fn reset_password(
        &self,
        request: Request<user_pb::ResetPasswordRequest>,
    ) -> Result<Response<user_pb::RevokeSessionsResponse>, Status> {
        Ok(Response::new(
            self.do_reset_password(request.into_inner()).await?,
        ))
    }

    async fn delete_account(
        &self,
        request: Request<user_pb::DeleteAccountRequest>,
    ) -> Result<Response<user_pb::DeleteAccountResponse>, Status> {
        Ok(Response::new(
            self.do_delete_account(request.into_inner()).await?,
        ))
    }

    async fn update_profile(
        &self,
        request: Request<user_pb::UpdateProfileRequest>,
    ) -> Result<Response<user_pb::User>, Status> {
        Ok(Response::new(
            self.do_update_profile(request.into_inner()).await?,
        ))
    }

    async fn get_user(
        &self,
        request: Request<user_pb::GetUserRequest>,
    ) -> Result<Response<user_pb::User>, Status> {
        let req = request.into_inner();
        check_username(&req.username)?;
        let user = self
            .store
            .user(&req.username)
            .await?
            .ok_or_else(|| UserError::NotFound(format!("user {} not found", req.username)))?;
        Ok(Response::new(user_pb(user)))
    }

    async fn get_users(
        &self,
        request: Request<user_pb::GetUsersRequest>,
    ) -> Result<Response<user_pb::GetUsersResponse>, Status> {
        let mut names = request.into_inner().usernames;
        if names.len() > MAX_GET_USERS {
            return Err(UserError::InvalidArgument(format!(
                "at most {MAX_GET_USERS} usernames a call, got {}",
                names.len()
            ))
            .into());
        }
        for name in &names {
            check_username(name)?;
        }
        names.sort_unstable();
        names.dedup();
        let users = self.store.users(&names).await?;
        Ok(Response::new(user_pb::GetUsersResponse {
            users: users.into_iter().map(user_pb).collect(),
        }))
    }

    async fn create_room(
        &self,
        request: Request<user_pb::CreateRoomRequest>,
    ) -> Result<Response<user_pb::Room>, Status> {
        let req = request.into_inner();
        check_room(&req.name)?;
        check_username(&req.creator)?;
        let topic = req.topic.unwrap_or_default();
        check_topic(&topic)?;
        let visibility = req.visibility.as_deref().unwrap_or("public");
        check_visibility(visibility)?;
        let room = self
            .store
            .create_room(&req.name, topic.trim(), &req.creator, visibility)
            .await?;
        self.events.changed(&req.name).await;
        Ok(Response::new(room_pb(room)))
    }

    async fn join_room(
        &self,
        request: Request<user_pb::RoomMembershipRequest>,
    ) -> Result<Response<user_pb::Room>, Status> {
        let req = request.into_inner();
        check_room(&req.room)?;
        check_username(&req.username)?;
        let from_seq = self.events.room_seq(&req.room).await?;
        let room = self
            .store
            .join_room(&req.room, &req.username, from_seq)
            .await?;
        self.events.changed(&req.room).await;
        Ok(Response::new(room_pb(room)))
    }

    async fn leave_room(
        &self,
        request: Request<user_pb::RoomMembershipRequest>,
    ) -> Result<Response<user_pb::LeaveRoomResponse>, Status> {
        let req = request.into_inner();
        check_room(&req.room)?;
        check_username(&req.username)?;
        self.store.leave_room(&req.room, &req.username).await?;
        self.events.changed(&req.room).await;
        Ok(Response::new(user_pb::LeaveRoomResponse {}))
    }

    async fn list_user_rooms(
        &self,
        request: Request<user_pb::ListUserRoomsRequest>,
    ) -> Result<Response<user_pb::ListUserRoomsResponse>, Status> {
        let req = request.into_inner();
        check_username(&req.username)?;
        let rooms = self.store.user_rooms(&req.username).await?;
        Ok(Response::new(user_pb::ListUserRoomsResponse {
            rooms: rooms.into_iter().map(room_pb).collect(),
        }))
    }

    async fn list_room_members(
        &self,
        request: Request<user_pb::ListRoomMembersRequest>,
    ) -> Result<Response<user_pb::ListRoomMembersResponse>, Status> {
        let req = request.into_inner();
        check_room(&req.room)?;
        let room = self
            .store
            .room_members(&req.room)
            .await?
            .ok_or_else(|| UserError::NotFound(format!("room {} not found", req.room)))?;
        Ok(Response::new(user_pb::ListRoomMembersResponse {
            members: room
                .members
                .into_iter()
                .map(|m| user_pb::Member {
                    username: m.username,
                    display_name: m.display_name,
                    role: m.role,
                    joined_at: Some(timestamp(m.joined_at)),
                    muted_until_ms: m.muted_until.map_or(0, |t| t.timestamp_millis()),
                })
                .collect(),
            visibility: room.visibility,
            slow_mode_secs: u32::try_from(room.slow_mode_secs).unwrap_or(0),
        }))
    }

    async fn check_membership(
        &self,
        request: Request<user_pb::RoomMembershipRequest>,
    ) -> Result<Response<user_pb::CheckMembershipResponse>, Status> {
        let req = request.into_inner();
        check_room(&req.room)?;
        check_username(&req.username)?;
        let (room_exists, member, from) = self.store.membership(&req.room, &req.username).await?;
        Ok(Response::new(user_pb::CheckMembershipResponse {
            member,
            room_exists,
            history_from_seq: u64::try_from(from).unwrap_or(0),
        }))
    }

    async fn update_room(
        &self,
        request: Request<user_pb::UpdateRoomRequest>,
    ) -> Result<Response<user_pb::Room>, Status> {
        Ok(Response::new(
            self.update_room_(request.into_inner()).await?,
        ))
    }

    async fn moderate(
        &self,
        request: Request<user_pb::ModerateRequest>,
    ) -> Result<Response<user_pb::ModerateResponse>, Status> {
        self.moderate_(request.into_inner()).await?;
        Ok(Response::new(user_pb::ModerateResponse {}))
    }

    async fn invite(
        &self,
        request: Request<user_pb::InviteRequest>,
    ) -> Result<Response<user_pb::Invitation>, Status> {
        Ok(Response::new(self.invite_(request.into_inner()).await?))
    }

    async fn answer_invite(
        &self,
        request: Request<user_pb::AnswerInviteRequest>,
    ) -> Result<Response<user_pb::AnswerInviteResponse>, Status> {
        Ok(Response::new(
            self.answer_invite_(request.into_inner()).await?,
        ))
    }

    async fn list_invites(
        &self,
        request: Request<user_pb::ListInvitesRequest>,
    ) -> Result<Response<user_pb::ListInvitesResponse>, Status> {
        Ok(Response::new(
            self.list_invites_(request.into_inner()).await?,
        ))
    }

    async fn list_public_rooms(
        &self,
        request: Request<user_pb::ListPublicRoomsRequest>,
    ) -> Result<Response<user_pb::ListPublicRoomsResponse>, Status> {
        Ok(Response::new(
            self.list_public_rooms_(request.into_inner()).await?,
        ))
    }

    async fn list_bans(
        &self,
        request: Request<user_pb::RoomActorRequest>,
    ) -> Result<Response<user_pb::ListBansResponse>, Status> {
        Ok(Response::new(self.list_bans_(request.into_inner()).await?))
    }

    async fn list_moderation_log(
        &self,
        request: Request<user_pb::ListModerationLogRequest>,
    ) -> Result<Response<user_pb::ListModerationLogResponse>, Status> {
        Ok(Response::new(
            self.list_moderation_log_(request.into_inner()).await?,
        ))
    }

    async fn block(
        &self,
        request: Request<user_pb::BlockRequest>,
    ) -> Result<Response<user_pb::BlockResponse>, Status> {
        Ok(Response::new(
            self.set_block(request.into_inner(), true).await?,
        ))
    }

    async fn unblock(
        &self,
        request: Request<user_pb::BlockRequest>,
    ) -> Result<Response<user_pb::BlockResponse>, Status> {
        Ok(Response::new(
            self.set_block(request.into_inner(), false).await?,
        ))
    }

    async fn get_blocks(
        &self,
        request: Request<user_pb::GetBlocksRequest>,
    ) -> Result<Response<user_pb::GetBlocksResponse>, Status> {
        Ok(Response::new(self.get_blocks_(request.into_inner()).await?))
    }

    async fn blocked_by(
        &self,
        request: Request<user_pb::BlockedByRequest>,
    ) -> Result<Response<user_pb::BlockedByResponse>, Status> {
        Ok(Response::new(self.blocked_by_(request.into_inner()).await?))
    }

    async fn create_invite_link(
        &self,
        request: Request<user_pb::CreateInviteLinkRequest>,
    ) -> Result<Response<user_pb::InviteLink>, Status> {
        Ok(Response::new(
            self.create_invite_link_(request.into_inner()).await?,
        ))
    }

    async fn list_invite_links(
        &self,
        request: Request<user_pb::RoomActorRequest>,
    ) -> Result<Response<user_pb::ListInviteLinksResponse>, Status> {
        Ok(Response::new(
            self.list_invite_links_(request.into_inner()).await?,
        ))
    }

    async fn revoke_invite_link(
        &self,
        request: Request<user_pb::RevokeInviteLinkRequest>,
    ) -> Result<Response<user_pb::RevokeInviteLinkResponse>, Status> {
        Ok(Response::new(
            self.revoke_invite_link_(request.into_inner()).await?,
        ))
    }

    async fn use_invite_link(
        &self,
        request: Request<user_pb::UseInviteLinkRequest>,
    ) -> Result<Response<user_pb::Room>, Status> {
        Ok(Response::new(
            self.use_invite_link_(request.into_inner()).await?,
        ))
    }
}
