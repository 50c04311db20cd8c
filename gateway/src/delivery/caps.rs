//! Per-user and per-address socket caps on this gateway. A permit is taken
//! before the upgrade and held for the socket's life, so counting is exact
//! even when many sockets open at once.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{Arc, Mutex},
};

#[derive(Default)]
struct Counts {
    users: HashMap<Arc<str>, u32>,
    ips: HashMap<IpAddr, u32>,
}

pub struct ConnCaps {
    counts: Mutex<Counts>,
    per_user: u32,
    per_ip: u32,
}

/// Which cap refused a socket.
#[derive(Debug, PartialEq, Eq)]
pub enum CapExceeded {
    User,
    Ip,
}

impl ConnCaps {
    pub fn new(per_user: u32, per_ip: u32) -> Self {
        Self {
            counts: Mutex::default(),
            per_user,
            per_ip,
        }
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A permit for one more socket of `user` from `ip`, if both are under
    /// their caps.
    pub fn acquire(self: &Arc<Self>, user: &str, ip: IpAddr) -> Result<ConnPermit, CapExceeded> {
        let mut counts = self.counts();
        if counts.users.get(user).copied().unwrap_or(0) >= self.per_user {
            return Err(CapExceeded::User);
        }
        if counts.ips.get(&ip).copied().unwrap_or(0) >= self.per_ip {
            return Err(CapExceeded::Ip);
        }
        let user: Arc<str> = Arc::from(user);
        *counts.users.entry(user.clone()).or_default() += 1;
        *counts.ips.entry(ip).or_default() += 1;
        Ok(ConnPermit {
            caps: self.clone(),
            user,
            ip,
        })
    }

    fn release(&self, user: &str, ip: IpAddr) {
        let mut counts = self.counts();
        if let Some(n) = counts.users.get_mut(user) {
            *n -= 1;
            if *n == 0 {
                counts.users.remove(user);
            }
        }
        if let Some(n) = counts.ips.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                counts.ips.remove(&ip);
            }
        }
    }
}

/// One socket's place under the caps; dropping it frees the place.
pub struct ConnPermit {
    caps: Arc<ConnCaps>,
    user: Arc<str>,
    ip: IpAddr,
}

impl Drop for ConnPermit {
    fn drop(&mut self) {
        self.caps.release(&self.user, self.ip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_count_per_user_and_per_address_and_free_on_drop() {
        let caps = Arc::new(ConnCaps::new(2, 3));
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let p1 = caps.acquire("alice", a).unwrap();
        let _p2 = caps.acquire("alice", b).unwrap();
        assert_eq!(caps.acquire("alice", a).err(), Some(CapExceeded::User));
        let _p3 = caps.acquire("bob", a).unwrap();
        let _p4 = caps.acquire("carol", a).unwrap();
        assert_eq!(caps.acquire("dave", a).err(), Some(CapExceeded::Ip));
        drop(p1);
        assert!(
            caps.acquire("alice", b).is_ok(),
            "a dropped permit frees both places"
        );
        assert!(caps.counts().users.len() <= 4);
    }
}
