//! `beacon token new`: a write token's secret, printed once, and the `[[api.tokens]]` stanza
//! that holds its SHA-256 and scope.

use ipnet::IpNet;
use sha2::{Digest as _, Sha256};

use crate::cli::TokenNewArgs;
use crate::config::TokenSettings;
use crate::config::api::{Digest, hex};

/// A new token: the secret to hand to the client, and the settings the agent keeps.
pub struct Minted {
    /// What the client sends as `Authorization: Bearer SECRET`.
    pub secret: String,
    /// The token as `[[api.tokens]]` holds it.
    pub settings: TokenSettings,
}

/// Makes a token from the command line's scope.
pub fn mint(args: &TokenNewArgs) -> Minted {
    // The thread RNG is a CSPRNG seeded from the OS.
    let bytes: [u8; 32] = rand::random();
    let secret = format!("bcn_{}", hex(&bytes));
    let digest: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
    let settings = TokenSettings {
        name: args.name.clone(),
        secret_sha256: Digest(digest),
        frameworks: args.framework.clone(),
        backend_cidrs: args.backend_cidr.clone(),
        named_vips: args.vips,
        ip_vip_cidrs: args.ip_vip_cidr.clone(),
        max_registrations: args.max_registrations,
    };
    Minted { secret, settings }
}

/// The `[[api.tokens]]` stanza for `token`, as the agent's TOML file reads it.
pub fn stanza(token: &TokenSettings) -> String {
    let list = |items: Vec<String>| {
        let quoted: Vec<String> = items.iter().map(|i| format!("{i:?}")).collect();
        format!("[{}]", quoted.join(", "))
    };
    let nets = |nets: &[IpNet]| list(nets.iter().map(ToString::to_string).collect());
    format!(
        "[[api.tokens]]\nname = {:?}\nsecret_sha256 = \"{:?}\"\nframeworks = {}\nbackend_cidrs = {}\n\
         named_vips = {}\nip_vip_cidrs = {}\nmax_registrations = {}\n",
        token.name,
        token.secret_sha256,
        list(token.frameworks.clone()),
        nets(&token.backend_cidrs),
        token.named_vips,
        nets(&token.ip_vip_cidrs),
        token.max_registrations,
    )
}

/// `beacon token new`: prints the secret once, then the stanza to paste.
pub fn run(args: &TokenNewArgs) {
    let minted = mint(args);
    println!("secret (shown once; send it as `Authorization: Bearer <secret>`):");
    println!("{}\n", minted.secret);
    println!("add to the agent's TOML file:\n");
    print!("{}", stanza(&minted.settings));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stanza_parses_back_to_the_token() {
        let args = TokenNewArgs {
            name: "ci".into(),
            framework: vec!["shop".into()],
            backend_cidr: vec!["10.0.0.0/8".parse().unwrap()],
            vips: true,
            ip_vip_cidr: vec![],
            max_registrations: 7,
        };
        let minted = mint(&args);
        let text = format!(
            "[mesos_dns]\nmasters = [\"a:1\"]\n{}",
            stanza(&minted.settings)
        );
        let config =
            crate::config::Config::from_toml(&text, std::path::Path::new("/x.toml")).unwrap();
        assert_eq!(config.api.tokens, std::slice::from_ref(&minted.settings));
        let digest: [u8; 32] = Sha256::digest(minted.secret.as_bytes()).into();
        assert_eq!(config.api.tokens[0].secret_sha256.0, digest);
    }
}
