//! The privileges a MySQL or MariaDB user needs for replication from the cursor fetch prints,
//! read from `SHOW GRANTS` before anything is exported, so a missing one is named with the
//! `GRANT` that fixes it instead of failing when the replicator starts.

use mysql_async::Conn;
use mysql_async::prelude::Queryable as _;
use thiserror::Error;

use crate::Flavor;

/// What `SHOW GRANTS` says the current user holds server-wide.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants {
    /// `ALL PRIVILEGES ON *.*`.
    pub all: bool,
    /// Privileges on `*.*`, upper case (`REPLICATION SLAVE`).
    pub global: Vec<String>,
    /// Roles are granted: their privileges are not listed, so a missing one is uncertain.
    pub roles: bool,
}

/// Privileges the user lacks, with the statement that grants them.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error(
    "user {user} lacks {} on the source, which replication from the printed cursor needs: run {grant} (or pass --ignore-replication-check for a load without replication)",
    missing.join(", ")
)]
pub struct MissingPrivileges {
    /// `'name'@'host'`.
    pub user: String,
    /// Missing privileges, as `GRANT` spells them.
    pub missing: Vec<&'static str>,
    /// The `GRANT` statement to run.
    pub grant: String,
}

/// Reads `SHOW GRANTS` lines.
pub fn parse_grants(lines: &[String]) -> Grants {
    let mut g = Grants::default();
    for line in lines {
        let Some(rest) = line.strip_prefix("GRANT ") else { continue };
        let Some((privileges, on)) = rest.split_once(" ON ") else {
            // `GRANT role TO user`: a role whose privileges this listing does not show.
            g.roles = true;
            continue;
        };
        if !on.trim_start().starts_with("*.*") {
            continue;
        }
        for p in privileges.split(',') {
            let p = p.trim().to_ascii_uppercase();
            if p == "ALL PRIVILEGES" || p == "ALL" {
                g.all = true;
            } else {
                g.global.push(p);
            }
        }
    }
    g
}

/// Which replication privileges `g` lacks: `REPLICATION SLAVE` to read the binlog, and
/// `REPLICATION CLIENT` (MariaDB 10.5+ calls it `BINLOG MONITOR`) to list binlogs and check
/// that the cursor's are still there.
pub fn missing_for_replication(g: &Grants, flavor: Flavor) -> Vec<&'static str> {
    if g.all {
        return Vec::new();
    }
    let has = |names: &[&str]| names.iter().any(|n| g.global.iter().any(|p| p == n));
    let mut missing = Vec::new();
    if !has(&["REPLICATION SLAVE", "REPLICATION REPLICA"]) {
        missing.push("REPLICATION SLAVE");
    }
    if !has(&["REPLICATION CLIENT", "BINLOG MONITOR"]) {
        missing.push(match flavor {
            Flavor::Mariadb => "BINLOG MONITOR",
            Flavor::Mysql => "REPLICATION CLIENT",
        });
    }
    missing
}

/// Checks the current user's replication privileges. `Ok(Some(_))` lists missing privileges
/// that roles might still grant (the caller warns); an error when they are surely missing.
///
/// # Errors
/// [`MissingPrivileges`] with the `GRANT` to run; a failed `SHOW GRANTS` is not an error
/// (`Ok(None)`): the replicator's own error will name the privilege.
pub async fn check_replication_privileges(
    conn: &mut Conn,
    flavor: Flavor,
) -> Result<Option<MissingPrivileges>, MissingPrivileges> {
    let Ok(lines) = conn.query::<String, _>("SHOW GRANTS").await else { return Ok(None) };
    let user: String = conn
        .query_first::<String, _>("SELECT CURRENT_USER()")
        .await
        .ok()
        .flatten()
        .map(|u| match u.split_once('@') {
            Some((n, h)) => format!("'{n}'@'{h}'"),
            None => format!("'{u}'"),
        })
        .unwrap_or_else(|| "CURRENT_USER".into());
    let grants = parse_grants(&lines);
    let missing = missing_for_replication(&grants, flavor);
    if missing.is_empty() {
        return Ok(None);
    }
    let grant = format!("GRANT {} ON *.* TO {user}", missing.join(", "));
    let problem = MissingPrivileges { user, missing, grant };
    if grants.roles { Ok(Some(problem)) } else { Err(problem) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(s: &[&str]) -> Vec<String> {
        s.iter().map(|l| (*l).to_owned()).collect()
    }

    #[test]
    fn grants_as_mariadb_and_mysql_print_them() {
        let g = parse_grants(&lines(&[
            "GRANT SELECT, RELOAD, BINLOG MONITOR ON *.* TO `u`@`%` IDENTIFIED BY PASSWORD '*AB'",
            "GRANT INSERT ON `app`.* TO `u`@`%`",
        ]));
        assert!(!g.all && !g.roles);
        assert_eq!(missing_for_replication(&g, Flavor::Mariadb), ["REPLICATION SLAVE"]);
        let all = parse_grants(&lines(&["GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost`"]));
        assert!(missing_for_replication(&all, Flavor::Mysql).is_empty());
        let mysql = parse_grants(&lines(&[
            "GRANT SELECT, REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO `u`@`%`",
            "GRANT `migrator`@`%` TO `u`@`%`",
        ]));
        assert!(mysql.roles);
        assert!(missing_for_replication(&mysql, Flavor::Mysql).is_empty());
        let none = parse_grants(&lines(&["GRANT USAGE ON *.* TO `u`@`%`"]));
        assert_eq!(
            missing_for_replication(&none, Flavor::Mysql),
            ["REPLICATION SLAVE", "REPLICATION CLIENT"]
        );
    }
}
