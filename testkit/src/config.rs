//! Configurations as production builds them: parsed by clap from settings
//! named as in the README (`RATE_PER_SEC`, given as `--rate-per-sec`), then
//! resolved and validated like `ServiceConfig::load` does. A test names
//! only the settings it changes; everything else is the real default.

use service_kit::config::ServiceConfig;

/// A setting: its README name (the environment variable) and value.
pub type Setting = (&'static str, String);

/// Settings from `(name, value)` pairs.
pub fn settings<V: ToString>(pairs: &[(&'static str, V)]) -> Vec<Setting> {
    pairs.iter().map(|(k, v)| (*k, v.to_string())).collect()
}

/// `binary`'s configuration from `settings` (later ones win), or a panic
/// naming what production would have refused.
pub fn parse<C: ServiceConfig>(binary: &str, settings: &[Setting]) -> C {
    let mut args = vec![binary.to_owned()];
    for (i, (name, value)) in settings.iter().enumerate() {
        // A later setting of the same name replaces this one.
        if settings[i + 1..].iter().any(|(later, _)| later == name) {
            continue;
        }
        args.push(format!(
            "--{}={value}",
            name.to_lowercase().replace('_', "-")
        ));
    }
    let mut config =
        C::try_parse_from(&args).unwrap_or_else(|e| panic!("{binary} refuses {settings:?}: {e}"));
    if let Err(e) = config.resolve().and_then(|()| config.validate()) {
        panic!("{binary} refuses {settings:?}: {e}");
    }
    config
}

/// What every service of a test shares: its Redis (and prefix), the test
/// secrets, and listeners on port 0.
pub fn base(storage: &crate::Storage) -> Vec<Setting> {
    settings(&[
        ("REDIS_URL", crate::redis_url()),
        ("REDIS_CLUSTER", crate::redis_cluster().to_string()),
        ("REDIS_PREFIX", storage.redis_prefix.clone()),
        ("SERVICE_TOKEN", crate::SERVICE_TOKEN.to_owned()),
        ("OPS_ADDR", "127.0.0.1:0".to_owned()),
    ])
}

/// [`base`], with the JWT secret and a public listener on port 0.
pub fn base_with_jwt(storage: &crate::Storage) -> Vec<Setting> {
    let mut s = base(storage);
    s.extend(settings(&[
        ("JWT_SECRET", crate::JWT_SECRET),
        ("LISTEN_ADDR", "127.0.0.1:0"),
    ]));
    s
}
