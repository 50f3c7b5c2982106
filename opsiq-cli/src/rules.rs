//! The proactive rule commands: add a rule from a JSON file, list rules, enable and disable.

use std::io::Read;
use std::path::{Path, PathBuf};

use clap::Subcommand;
use opsiq_core::proactive::{Rule, parse_rule_json};
use opsiq_core::types::Id;
use opsiq_core::{Error, Result};

use crate::Printer;
use crate::admin::{WorkspaceArg, open, open_existing, parse_id};

#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// Add a rule written as JSON, the body `POST /api/v1/proactive/rules` takes.
    Add {
        /// The rule file; `-` reads standard input.
        #[arg(long)]
        file: PathBuf,
        #[command(flatten)]
        workspace: WorkspaceArg,
    },
    /// List rules, newest first.
    List {
        /// Only this workspace's rules.
        #[arg(long, value_parser = parse_id)]
        workspace: Option<Id>,
    },
    /// Turn a rule off: it stops reacting to events.
    Disable {
        #[arg(value_parser = parse_id)]
        id: Id,
    },
    /// Turn a rule back on.
    Enable {
        #[arg(value_parser = parse_id)]
        id: Id,
    },
}

fn read_rule_file(file: &Path) -> Result<String> {
    let mut text = String::new();
    let read = if file == Path::new("-") {
        std::io::stdin().read_to_string(&mut text).map(|_| ())
    } else {
        std::fs::read_to_string(file).map(|t| text = t)
    };
    read.map_err(|e| Error::validation("file", format!("cannot read {}: {e}", file.display())))?;
    Ok(text)
}

fn state(rule: &Rule) -> &'static str {
    if rule.enabled { "enabled" } else { "disabled" }
}

fn rule_row(r: &Rule) -> Vec<String> {
    vec![
        r.id.to_string(),
        r.workspace_id.to_string(),
        r.name.clone(),
        r.event.clone(),
        r.conditions.len().to_string(),
        r.actions
            .iter()
            .map(|a| a.kind().as_str())
            .collect::<Vec<_>>()
            .join(","),
        format!("{}s", r.cooldown_seconds),
        state(r).to_string(),
    ]
}

pub fn rules(db: &Path, cmd: RulesCommand, printer: &Printer) -> Result<()> {
    match cmd {
        RulesCommand::Add { file, workspace } => {
            let input = parse_rule_json(&read_rule_file(&file)?)?;
            let rule = open(db)?.add_rule(workspace.workspace, input)?;
            printer.show(&rule, |r| {
                format!(
                    "Added rule {} \"{}\" (workspace {}, event {}, {}).",
                    r.id,
                    r.name,
                    r.workspace_id,
                    r.event,
                    state(r)
                )
            });
        }
        RulesCommand::List { workspace } => {
            let rules = open_existing(db)?.all_rules(workspace)?;
            printer.table(
                &rules,
                &[
                    "ID",
                    "WORKSPACE",
                    "NAME",
                    "EVENT",
                    "CONDITIONS",
                    "ACTIONS",
                    "COOLDOWN",
                    "STATE",
                ],
                rule_row,
            );
        }
        RulesCommand::Disable { id } => switch(db, id, false, printer)?,
        RulesCommand::Enable { id } => switch(db, id, true, printer)?,
    }
    Ok(())
}

fn switch(db: &Path, id: Id, enabled: bool, printer: &Printer) -> Result<()> {
    let rule = open_existing(db)?.set_rule_enabled(id, enabled)?;
    printer.show(&rule, |r| {
        format!("Rule {} \"{}\" is {}.", r.id, r.name, state(r))
    });
    Ok(())
}
