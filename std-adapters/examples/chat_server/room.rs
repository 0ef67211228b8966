//! The room: who is connected to this process (the hub), the recent history,
//! and, with `--redis`, the other processes serving the same room.
//!
//! Without Redis an event goes straight to the local hub and the history is
//! a ring in memory. With Redis every event is published on one channel;
//! each process (this one included) gets it from its subscription and hands
//! it to its own hub, so every page sees every event once. The history is a
//! Redis list trimmed to the last `HISTORY` messages, and who is online is
//! one Redis hash per process (field: page id, value: the member), kept with
//! a TTL so that a process that died without cleaning up drops out of the
//! list within `PRESENCE_TTL`. A join adds one field and a leave removes one,
//! so a thousand pages leaving at once cost a thousand small commands, not a
//! thousand rewrites of the whole hash; a timer rewrites the hash now and
//! then, which also renews the TTL. The hashes are found with `SCAN`, never
//! `KEYS`, so a large Redis is never blocked by the online list.
//!
//! A name belongs to one person at a time: a page joining under a name that
//! another client id holds in the room (compared without regard to case, see
//! [`crate::protocol::name_taken`]) is refused. Within a process the check and
//! the join happen under the hub's lock; across processes each process keeps
//! a second hash, from lowercased name to client id, and a join reads one
//! field of each, so its cost does not grow with the number of pages. Two
//! pages joining under one name on two processes in the same instant can
//! both get in (the next join with that name is refused).

use crate::protocol::{name_taken, Event, Member, Online, HISTORY};
use futures_util::StreamExt;
use redis::AsyncCommands;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{mpsc, Notify};

/// Messages queued per page before it counts as too slow.
pub const QUEUE: usize = 256;

const CHANNEL: &str = "wsproto-chat:events";
const HISTORY_KEY: &str = "wsproto-chat:history";
const PRESENCE_PREFIX: &str = "wsproto-chat:online:";
/// Per process: a hash from each name in use there (lowercased) to the
/// client id holding it, so that a join checks one field per process.
const NAMES_PREFIX: &str = "wsproto-chat:names:";
const PRESENCE_TTL: Duration = Duration::from_secs(30);
/// The online list goes out at most this often: with a thousand pages, one
/// list per join would be a million lists.
const ONLINE_EVERY: Duration = Duration::from_millis(500);
/// How long a Redis command may take before the room counts as unavailable.
const REDIS_RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);
/// Entries in the online list (the count covers everyone).
const ONLINE_SHOWN: usize = 100;

/// A page connected to this process.
struct Client {
    tx: mpsc::Sender<Arc<str>>,
    member: Option<Member>,
    /// Woken when the page is dropped, so that a send stuck on its full TCP
    /// window gives up at once.
    kick: Arc<Notify>,
}

/// The pages connected to this process.
#[derive(Default)]
pub struct Hub {
    clients: Mutex<HashMap<u64, Client>>,
    next: AtomicU64,
    /// Someone joined or left: the online list is due (see `announce_online`).
    presence: Notify,
}

impl Hub {
    fn lock(&self) -> MutexGuard<'_, HashMap<u64, Client>> {
        self.clients.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a page that has not joined yet (it gets nothing until then).
    pub fn connect(&self) -> (u64, mpsc::Receiver<Arc<str>>, Arc<Notify>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let kick = Arc::new(Notify::new());
        let client = Client {
            tx,
            member: None,
            kick: kick.clone(),
        };
        self.lock().insert(id, client);
        (id, rx, kick)
    }

    /// Marks the page as joined, from now on getting the room's events,
    /// unless another client id on this process holds its name (then
    /// `false`, and nothing changes). One lock covers the check and the join,
    /// so two pages of this process never both take a name.
    fn try_join(&self, id: u64, member: &Member) -> bool {
        let mut clients = self.lock();
        let holders = clients
            .iter()
            .filter(|(other, _)| **other != id)
            .filter_map(|(_, c)| c.member.as_ref());
        if name_taken(holders, &member.name, &member.client) {
            return false;
        }
        if let Some(client) = clients.get_mut(&id) {
            client.member = Some(member.clone());
        }
        true
    }

    /// Forgets the page; returns who it was if it had joined.
    pub fn disconnect(&self, id: u64) -> Option<Member> {
        self.lock().remove(&id).and_then(|c| c.member)
    }

    /// Queues `text` for every joined page. A page whose queue is full is
    /// dropped from the hub: its sender goes away, and its task closes it.
    /// Returns the ids of the dropped pages.
    pub fn broadcast(&self, text: &str) -> Vec<(u64, Member)> {
        let text: Arc<str> = text.into();
        let mut dropped = Vec::new();
        self.lock().retain(|id, client| {
            let Some(member) = &client.member else {
                return true;
            };
            if client.tx.try_send(text.clone()).is_ok() {
                true
            } else {
                client.kick.notify_one();
                dropped.push((*id, member.clone()));
                false
            }
        });
        dropped
    }

    /// Whether a joined page of this process uses `name` (case-insensitive).
    fn holds_name(&self, name: &str) -> bool {
        let wanted = name.to_lowercase();
        self.lock()
            .values()
            .filter_map(|c| c.member.as_ref())
            .any(|m| m.name.to_lowercase() == wanted)
    }

    /// Who has joined on this process.
    fn members(&self) -> Vec<Member> {
        self.lock()
            .values()
            .filter_map(|c| c.member.clone())
            .collect()
    }

    /// Whether no page is connected.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Drops every page (each task then closes its socket).
    pub fn clear(&self) -> Vec<(u64, Member)> {
        self.lock()
            .drain()
            .filter_map(|(id, c)| Some((id, c.member?)))
            .collect()
    }
}

/// Where events and history live.
pub enum Room {
    Local {
        hub: Arc<Hub>,
        history: Mutex<VecDeque<Arc<str>>>,
    },
    Redis {
        hub: Arc<Hub>,
        server: String,
        conn: redis::aio::MultiplexedConnection,
    },
}

/// Messages of a room operation that failed (Redis unreachable).
pub type RoomError = String;

/// Why a join was refused.
#[derive(Debug)]
pub enum JoinError {
    /// Another client id in the room already uses this name.
    NameTaken,
    /// The room could not be reached.
    Unavailable(RoomError),
}

impl From<RoomError> for JoinError {
    fn from(e: RoomError) -> Self {
        JoinError::Unavailable(e)
    }
}

fn redis_error(e: redis::RedisError) -> RoomError {
    format!("Redis: {e}")
}

impl Room {
    /// The in-process room.
    pub fn local(hub: Arc<Hub>) -> Room {
        Room::Local {
            hub,
            history: Mutex::new(VecDeque::with_capacity(HISTORY)),
        }
    }

    /// The room shared through Redis at `url`: connects, subscribes, and
    /// starts the tasks that relay events to `hub` and keep this process's
    /// presence alive.
    pub async fn redis(hub: Arc<Hub>, url: &str, server: String) -> Result<Arc<Room>, RoomError> {
        let client = redis::Client::open(url).map_err(|e| format!("bad Redis URL {url}: {e}"))?;
        // The client's default of 500 ms per answer is short for a burst of
        // joins on a busy machine; a page had rather wait than be refused.
        let config =
            redis::AsyncConnectionConfig::new().set_response_timeout(Some(REDIS_RESPONSE_TIMEOUT));
        let conn = client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|e| format!("cannot connect to Redis at {url}: {e}"))?;
        let mut pubsub = client
            .get_async_pubsub()
            .await
            .map_err(|e| format!("cannot subscribe on Redis at {url}: {e}"))?;
        pubsub
            .subscribe(CHANNEL)
            .await
            .map_err(|e| format!("cannot subscribe on Redis at {url}: {e}"))?;
        let room = Arc::new(Room::Redis {
            hub: hub.clone(),
            server,
            conn,
        });
        let relay = room.clone();
        tokio::spawn(async move {
            let mut messages = pubsub.into_on_message();
            while let Some(msg) = messages.next().await {
                let Ok(text) = msg.get_payload::<String>() else {
                    continue;
                };
                relay.deliver(&text).await;
            }
            eprintln!("chat_server: lost the Redis subscription; exiting");
            std::process::exit(1);
        });
        let keeper = room.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(PRESENCE_TTL / 3).await;
                if let Err(e) = keeper.refresh_presence().await {
                    eprintln!("chat_server: {e}");
                }
            }
        });
        Ok(room)
    }

    fn hub(&self) -> &Arc<Hub> {
        match self {
            Room::Local { hub, .. } | Room::Redis { hub, .. } => hub,
        }
    }

    /// Adds a connected page to the room and returns what its welcome needs:
    /// the history (oldest first). Announces the join to everyone. Refused
    /// when another client id holds the name, here or (with Redis) on
    /// another process.
    pub async fn join(&self, id: u64, member: Member) -> Result<Vec<String>, JoinError> {
        // This process's own pages are checked under the hub's lock.
        if self
            .name_taken_elsewhere(&member.name, &member.client)
            .await?
        {
            return Err(JoinError::NameTaken);
        }
        if !self.hub().try_join(id, &member) {
            return Err(JoinError::NameTaken);
        }
        let joined = async {
            let history = self.history().await?;
            self.presence_add(id, &member).await?;
            let event = Event::Join {
                name: member.name.clone(),
                client: member.client.clone(),
                time: crate::protocol::now_ms(),
            };
            self.publish(&event).await?;
            Ok::<_, RoomError>(history)
        };
        joined.await.map_err(JoinError::Unavailable)
    }

    /// Announces that page `id` left (it is already out of the hub).
    pub async fn leave(&self, id: u64, member: Member) -> Result<(), RoomError> {
        self.presence_remove(id, &member).await?;
        let event = Event::Leave {
            name: member.name,
            client: member.client,
            time: crate::protocol::now_ms(),
        };
        self.publish(&event).await
    }

    /// Sends an event to every page of the room (and keeps messages in the
    /// history).
    pub async fn publish(&self, event: &Event) -> Result<(), RoomError> {
        let text = serde_json::to_string(event).map_err(|e| e.to_string())?;
        match self {
            Room::Local { history, .. } => {
                if let Event::Message { .. } = event {
                    let mut history = history.lock().unwrap_or_else(|e| e.into_inner());
                    if history.len() == HISTORY {
                        history.pop_front();
                    }
                    history.push_back(text.as_str().into());
                }
                self.deliver(&text).await;
                Ok(())
            }
            Room::Redis { conn, .. } => {
                let mut conn = conn.clone();
                let mut pipe = redis::pipe();
                if let Event::Message { .. } = event {
                    pipe.rpush(HISTORY_KEY, &text)
                        .ignore()
                        .ltrim(HISTORY_KEY, -(HISTORY as isize), -1)
                        .ignore();
                }
                pipe.publish(CHANNEL, &text).ignore();
                pipe.query_async::<()>(&mut conn)
                    .await
                    .map_err(|e| format!("Redis: {e}"))
            }
        }
    }

    /// Hands an event to this process's pages; a join or leave makes the
    /// online list due.
    async fn deliver(&self, text: &str) {
        let hub = self.hub();
        let dropped = hub.broadcast(text);
        let changes_presence =
            text.starts_with(r#"{"type":"join""#) || text.starts_with(r#"{"type":"leave""#);
        if changes_presence || !dropped.is_empty() {
            hub.presence.notify_one();
        }
        for (id, member) in dropped {
            eprintln!(
                "dropped page {id} ({}): its send queue is full",
                member.name
            );
        }
    }

    /// The JSON online list of the whole room.
    pub async fn online(&self) -> Result<String, RoomError> {
        let mut members = match self {
            Room::Local { hub, .. } => hub.members(),
            Room::Redis { .. } => self.presence().await?,
        };
        members.sort();
        let connections = members.len();
        members.dedup_by(|a, b| a.client == b.client && a.name == b.name);
        let online = Online {
            kind: "online",
            count: members.len(),
            connections,
            members: &members[..members.len().min(ONLINE_SHOWN)],
        };
        serde_json::to_string(&online).map_err(|e| e.to_string())
    }

    /// The history, oldest first, as the JSON texts the room stores.
    async fn history(&self) -> Result<Vec<String>, RoomError> {
        match self {
            Room::Local { history, .. } => Ok(history
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .map(|t| t.to_string())
                .collect()),
            Room::Redis { conn, .. } => {
                let mut conn = conn.clone();
                conn.lrange(HISTORY_KEY, 0, -1).await.map_err(redis_error)
            }
        }
    }

    /// The keys matching `pattern` (a `SCAN` cursor loop, never `KEYS`),
    /// each once.
    async fn scan_keys(
        conn: &mut redis::aio::MultiplexedConnection,
        pattern: String,
    ) -> Result<Vec<String>, RoomError> {
        let mut keys = Vec::new();
        let mut found = conn
            .scan_match::<_, String>(pattern)
            .await
            .map_err(redis_error)?;
        while let Some(key) = found.next_item().await {
            keys.push(key.map_err(redis_error)?);
        }
        // SCAN may return a key more than once.
        keys.sort_unstable();
        keys.dedup();
        Ok(keys)
    }

    /// Everyone in the room: with Redis, the members listed in the presence
    /// hashes of every process.
    async fn presence(&self) -> Result<Vec<Member>, RoomError> {
        let Room::Redis { conn, .. } = self else {
            return Ok(self.hub().members());
        };
        let mut conn = conn.clone();
        let keys = Self::scan_keys(&mut conn, format!("{PRESENCE_PREFIX}*")).await?;
        let mut members = Vec::new();
        for key in keys {
            let values: Vec<String> = conn.hvals(&key).await.map_err(redis_error)?;
            members.extend(
                values
                    .iter()
                    .filter_map(|v| serde_json::from_str::<Member>(v).ok()),
            );
        }
        Ok(members)
    }

    /// Whether another process lists `name` (any case) under a client id
    /// other than `client` (with Redis; the hub checks this process).
    async fn name_taken_elsewhere(&self, name: &str, client: &str) -> Result<bool, RoomError> {
        let Room::Redis { conn, server, .. } = self else {
            return Ok(false);
        };
        let mut conn = conn.clone();
        let own = format!("{NAMES_PREFIX}{server}");
        let keys = Self::scan_keys(&mut conn, format!("{NAMES_PREFIX}*")).await?;
        let lower = name.to_lowercase();
        let mut pipe = redis::pipe();
        for key in keys.iter().filter(|k| **k != own) {
            pipe.hget(key, &lower);
        }
        if pipe.is_empty() {
            return Ok(false);
        }
        let holders: Vec<Option<String>> =
            pipe.query_async(&mut conn).await.map_err(redis_error)?;
        Ok(holders
            .into_iter()
            .flatten()
            .any(|holder| client.is_empty() || holder != client))
    }

    /// Lists page `id` in this process's presence hashes (with Redis).
    async fn presence_add(&self, id: u64, member: &Member) -> Result<(), RoomError> {
        let Room::Redis { server, conn, .. } = self else {
            return Ok(());
        };
        let online = format!("{PRESENCE_PREFIX}{server}");
        let names = format!("{NAMES_PREFIX}{server}");
        let value = serde_json::to_string(member).map_err(|e| e.to_string())?;
        let ttl = PRESENCE_TTL.as_secs() as i64;
        let mut conn = conn.clone();
        redis::pipe()
            .hset(&online, id, value)
            .ignore()
            .expire(&online, ttl)
            .ignore()
            .hset(&names, member.name.to_lowercase(), &member.client)
            .ignore()
            .expire(&names, ttl)
            .ignore()
            .query_async::<()>(&mut conn)
            .await
            .map_err(redis_error)
    }

    /// Takes page `id` out of this process's presence hashes (with Redis),
    /// and its name too unless another page here still uses it.
    async fn presence_remove(&self, id: u64, member: &Member) -> Result<(), RoomError> {
        let Room::Redis { server, conn, hub } = self else {
            return Ok(());
        };
        let mut pipe = redis::pipe();
        pipe.hdel(format!("{PRESENCE_PREFIX}{server}"), id).ignore();
        if !hub.holds_name(&member.name) {
            pipe.hdel(
                format!("{NAMES_PREFIX}{server}"),
                member.name.to_lowercase(),
            )
            .ignore();
        }
        let mut conn = conn.clone();
        pipe.query_async::<()>(&mut conn).await.map_err(redis_error)
    }

    /// Rewrites this process's presence hashes from its hub, with a fresh
    /// TTL (now and then, and on shutdown; joins and leaves edit single
    /// fields).
    async fn refresh_presence(&self) -> Result<(), RoomError> {
        let Room::Redis { hub, server, conn } = self else {
            return Ok(());
        };
        let online = format!("{PRESENCE_PREFIX}{server}");
        let names = format!("{NAMES_PREFIX}{server}");
        let mut pages: Vec<(u64, String)> = Vec::new();
        let mut holders: Vec<(String, String)> = Vec::new();
        for (id, member) in hub
            .lock()
            .iter()
            .filter_map(|(id, c)| Some((*id, c.member.as_ref()?)))
        {
            if let Ok(json) = serde_json::to_string(member) {
                pages.push((id, json));
            }
            holders.push((member.name.to_lowercase(), member.client.clone()));
        }
        let ttl = PRESENCE_TTL.as_secs() as i64;
        let mut conn = conn.clone();
        let mut pipe = redis::pipe();
        pipe.atomic().del(&online).ignore().del(&names).ignore();
        if !pages.is_empty() {
            pipe.hset_multiple(&online, &pages)
                .ignore()
                .expire(&online, ttl)
                .ignore()
                .hset_multiple(&names, &holders)
                .ignore()
                .expire(&names, ttl)
                .ignore();
        }
        pipe.query_async::<()>(&mut conn).await.map_err(redis_error)
    }

    /// On shutdown: drops the pages still there, tells the room they left,
    /// and removes this process from the online list.
    pub async fn shutdown(&self) {
        let members = self.hub().clear();
        if let Err(e) = self.refresh_presence().await {
            eprintln!("chat_server: {e}");
        }
        if let Room::Redis { .. } = self {
            for (id, member) in members {
                if let Err(e) = self.leave(id, member).await {
                    eprintln!("chat_server: {e}");
                    break;
                }
            }
        }
    }
}

/// Sends the online list to this process's pages after joins and leaves, at
/// most once per `ONLINE_EVERY`.
pub async fn announce_online(room: Arc<Room>) {
    loop {
        room.hub().presence.notified().await;
        tokio::time::sleep(ONLINE_EVERY).await;
        match room.online().await {
            Ok(online) => {
                for (id, member) in room.hub().broadcast(&online) {
                    eprintln!(
                        "dropped page {id} ({}): its send queue is full",
                        member.name
                    );
                    room.hub().presence.notify_one();
                }
            }
            Err(e) => eprintln!("chat_server: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(name: &str, client: &str) -> Member {
        Member {
            name: name.to_owned(),
            client: client.to_owned(),
        }
    }

    #[tokio::test]
    async fn a_taken_name_is_refused_and_the_page_may_try_another() {
        let hub = Arc::new(Hub::default());
        let room = Room::local(hub.clone());
        let (ada, _ada_rx, _) = hub.connect();
        let (tab, mut tab_rx, _) = hub.connect();
        let (eve, mut eve_rx, _) = hub.connect();
        assert!(room.join(ada, member("Ada", "c-ada")).await.is_ok());
        // Ada's second tab (same client id) shares the name, in any case.
        assert!(room.join(tab, member("ada", "c-ada")).await.is_ok());
        // Another client may not take it, whatever its case.
        for name in ["Ada", "ADA", "aDa"] {
            assert!(matches!(
                room.join(eve, member(name, "c-eve")).await,
                Err(JoinError::NameTaken)
            ));
        }
        // The refused page has not joined: it gets none of the room's events.
        room.publish(&Event::Join {
            name: "X".into(),
            client: "c-x".into(),
            time: 0,
        })
        .await
        .unwrap();
        assert!(eve_rx.try_recv().is_err());
        assert!(tab_rx.try_recv().is_ok());
        // Under another name it joins.
        assert!(room.join(eve, member("Eve", "c-eve")).await.is_ok());
        assert_eq!(hub.members().len(), 3);
        // Once every holder has left, the name is free again.
        hub.disconnect(ada);
        hub.disconnect(tab);
        let (late, _late_rx, _) = hub.connect();
        assert!(room.join(late, member("ADA", "c-late")).await.is_ok());
    }

    #[test]
    fn the_hub_checks_and_joins_under_one_lock() {
        let hub = Hub::default();
        let (a, _a_rx, _) = hub.connect();
        let (b, _b_rx, _) = hub.connect();
        assert!(hub.try_join(a, &member("Bob", "c-1")));
        assert!(!hub.try_join(b, &member("BOB", "c-2")));
        assert_eq!(hub.members(), vec![member("Bob", "c-1")]);
        // A page may join again under its own name (its own entry does not
        // count against it).
        assert!(hub.try_join(a, &member("bob", "c-1")));
    }
}
