//! Rooms: mine, create (behind the creation limit), join, leave, and the
//! members with where they are online (for members only: who is in a room
//! and when they are online is the room's business).

use chat_model::ids::{ConversationId, check_room_name};
use chat_redis::{connection::Redis, presence::Lookup};
use proto::user::v1 as user_pb;

use super::{Error, UserClient, access::Access, error::USER_SERVICE, limits::Limits};

#[derive(Clone)]
pub struct Rooms {
    users: UserClient,
    access: Access,
    limits: Limits,
    lookup: Lookup,
    redis: Redis,
}

/// A member, and whether they have a session open on any gateway.
pub struct Member {
    pub member: user_pb::Member,
    pub online: bool,
}

pub(super) fn check_name(name: &str) -> Result<(), Error> {
    check_room_name(name).map_err(|e| Error::Invalid(e.to_string()))
}

impl Rooms {
    pub fn new(
        users: UserClient,
        access: Access,
        limits: Limits,
        lookup: Lookup,
        redis: Redis,
    ) -> Self {
        Self {
            users,
            access,
            limits,
            lookup,
            redis,
        }
    }

    /// A client of user-service.
    pub(super) fn users(&self) -> UserClient {
        self.users.clone()
    }

    /// Counts a join or leave by `user` against its limit.
    pub(super) async fn membership_change(&self, user: &str) -> Result<(), Error> {
        self.limits.membership_change(user).await
    }

    /// `user`'s rooms, with their role in each.
    pub async fn mine(&self, user: String) -> Result<Vec<user_pb::Room>, Error> {
        Ok(self
            .users
            .clone()
            .list_user_rooms(user_pb::ListUserRoomsRequest { username: user })
            .await
            .map_err(Error::upstream(USER_SERVICE))?
            .into_inner()
            .rooms)
    }

    /// Creates a room owned by `user`.
    pub async fn create(
        &self,
        user: String,
        name: String,
        topic: Option<String>,
        visibility: Option<String>,
    ) -> Result<user_pb::Room, Error> {
        check_name(&name)?;
        self.limits.room_creation(&user).await?;
        Ok(self
            .users
            .clone()
            .create_room(user_pb::CreateRoomRequest {
                name,
                topic,
                creator: user,
                visibility,
            })
            .await
            .map_err(Error::upstream(USER_SERVICE))?
            .into_inner())
    }

    /// Joins `user` to a room (joining twice is not an error).
    pub async fn join(&self, user: String, name: String) -> Result<user_pb::Room, Error> {
        check_name(&name)?;
        self.membership_change(&user).await?;
        Ok(self
            .users
            .clone()
            .join_room(user_pb::RoomMembershipRequest {
                room: name,
                username: user,
            })
            .await
            .map_err(Error::upstream(USER_SERVICE))?
            .into_inner())
    }

    pub async fn leave(&self, user: String, name: String) -> Result<(), Error> {
        check_name(&name)?;
        self.membership_change(&user).await?;
        self.users
            .clone()
            .leave_room(user_pb::RoomMembershipRequest {
                room: name,
                username: user,
            })
            .await
            .map_err(Error::upstream(USER_SERVICE))?;
        Ok(())
    }

    /// The members of room `name`, for a member only.
    pub async fn members(&self, user: &str, name: &str) -> Result<Vec<Member>, Error> {
        check_name(name)?;
        self.access
            .check_can_read(user, &ConversationId::room(name))
            .await?;
        let members = self
            .users
            .clone()
            .list_room_members(user_pb::ListRoomMembersRequest {
                room: name.to_owned(),
            })
            .await
            .map_err(Error::upstream(USER_SERVICE))?
            .into_inner()
            .members;
        // Whoever blocked the caller looks offline to them.
        let hidden = self
            .users
            .clone()
            .blocked_by(user_pb::BlockedByRequest {
                username: user.to_owned(),
                room: name.to_owned(),
            })
            .await
            .map_err(Error::upstream(USER_SERVICE))?
            .into_inner()
            .usernames
            .into_iter()
            .collect::<std::collections::HashSet<String>>();
        let names: Vec<String> = members.iter().map(|m| m.username.clone()).collect();
        let online = self
            .lookup
            .clone()
            .any_online(&mut self.redis.clone(), &names)
            .await
            .map_err(Error::redis("looking up who is online"))?;
        Ok(members
            .into_iter()
            .zip(online)
            .map(|(member, online)| Member {
                online: online && !hidden.contains(&member.username),
                member,
            })
            .collect())
    }
}
