//! The tool registry: every tool is one declarative entry (name, toolset, description,
//! input schema, annotations, whether it goes upstream, whether it may run as a task, the
//! line it adds to the instructions, its handler). `tools/list`, call dispatch, task
//! dispatch and the server's instructions are all derived from it.
//!
//! Tools are listed in registry order: toolset by toolset (`core`, `delegate`, then the
//! model-kind toolsets `rag`, `retrieval`, `audio`, `images`), and within `core`:
//! list_models, chat_completion, compare_models, delete_conversation, list_subscriptions,
//! get_subscription.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, LazyLock, Mutex, OnceLock};

use futures_util::future::BoxFuture;
use rmcp::model::{CallToolResult, ContentBlock, JsonObject, Tool, ToolAnnotations};
use tokio_util::sync::CancellationToken;

use super::VultrServer;
use super::progress::CallProgress;
use crate::observe::CallFacts;
use crate::principal::Principal;
use crate::setting;
use crate::settings::{ToolSelection, Toolset};
use crate::spend::CallSpend;

/// Runs one call of a tool and renders its result (a failure as an `isError` result).
pub(super) type Handler = for<'a> fn(&'a VultrServer, Call) -> BoxFuture<'a, CallToolResult>;

/// One call as a handler gets it.
pub(super) struct Call {
    /// Who the call acts for.
    pub owner: Principal,
    /// The arguments as sent (decoded by the handler, which names a bad field).
    pub arguments: JsonObject,
    /// Where progress goes, when anyone listens.
    pub progress: Option<CallProgress>,
    /// Cancelled when the caller cancels the call (never for a task: a task is stopped by
    /// dropping its call).
    pub cancel: CancellationToken,
    /// Whether the caller may name files on this machine (`path`, `save_to`): only over
    /// stdio, where the server runs as the user who started it; never over HTTP, even on
    /// loopback without auth.
    pub local_files: bool,
    /// Who pays for what the call sends, under which limits; priced requests take a hold
    /// from it before anything is sent.
    pub spend: CallSpend,
    /// What the call learned, for its record (conversation, task, charges).
    pub facts: CallFacts,
}

/// What a tool may change.
#[derive(Debug, Clone, Copy)]
pub(super) enum Effect {
    /// Nothing (`readOnlyHint`): listed in read-only mode.
    ReadOnly,
    /// Something: hidden in read-only mode.
    Writes {
        /// It may destroy what exists.
        destructive: bool,
        /// Calling it again with the same arguments changes nothing more.
        idempotent: bool,
    },
}

/// How a tool behaves: what it may change and where its calls go.
#[derive(Debug, Clone, Copy)]
pub(super) struct Behaviour {
    /// What it may change.
    pub effect: Effect,
    /// Whether it reaches outside this server (`openWorldHint`).
    pub open_world: bool,
    /// Whether its calls go to Vultr (or downstream servers) and so take a place of the
    /// caller's share and a slot of the shared limit; the others never queue.
    pub upstream: bool,
    /// Whether a call may become a task, for clients that accept tasks.
    pub runs_as_task: bool,
}

impl Behaviour {
    /// Runs models upstream: long, may become a task, adds to what is stored.
    pub const MODEL_RUN: Behaviour = Behaviour {
        effect: Effect::Writes {
            destructive: false,
            idempotent: false,
        },
        open_world: true,
        upstream: true,
        runs_as_task: true,
    };
    /// Reads from Vultr (the account, or the inference API): goes upstream, changes
    /// nothing.
    pub const UPSTREAM_READ: Behaviour = Behaviour {
        effect: Effect::ReadOnly,
        open_world: true,
        upstream: true,
        runs_as_task: false,
    };
    /// Adds something upstream or to this server's media (a collection, an item, speech),
    /// destroying nothing; short, so never a task.
    pub const UPSTREAM_ADD: Behaviour = Behaviour {
        effect: Effect::Writes {
            destructive: false,
            idempotent: false,
        },
        open_world: true,
        upstream: true,
        runs_as_task: false,
    };
    /// Deletes something upstream (a collection, an item).
    pub const UPSTREAM_DELETE: Behaviour = Behaviour {
        effect: Effect::Writes {
            destructive: true,
            idempotent: true,
        },
        open_world: true,
        upstream: true,
        runs_as_task: false,
    };
    /// Reads the cached catalog (one shared fetch when it is stale): takes no slot.
    pub const CATALOG_READ: Behaviour = Behaviour {
        effect: Effect::ReadOnly,
        open_world: true,
        upstream: false,
        runs_as_task: false,
    };
    /// Deletes from this server's store.
    pub const LOCAL_DELETE: Behaviour = Behaviour {
        effect: Effect::Writes {
            destructive: true,
            idempotent: true,
        },
        open_world: false,
        upstream: false,
        runs_as_task: false,
    };
}

/// One tool.
pub(super) struct ToolEntry {
    /// Its name in `tools/list` and `tools/call`.
    pub name: &'static str,
    /// The toolset that lists it.
    pub toolset: Toolset,
    /// What it does, for the model choosing tools.
    pub description: String,
    /// Its input schema.
    pub input_schema: fn() -> Arc<JsonObject>,
    /// What it may change and where its calls go.
    pub behaviour: Behaviour,
    /// What the instructions say of it (lines starting `- `).
    pub guide: String,
    /// Runs a call.
    pub handler: Handler,
}

impl ToolEntry {
    /// The tool as `tools/list` shows it with `toolsets` on (a toolset may add arguments
    /// to another's tool: see [`WIDENED`]).
    fn tool(&self, toolsets: &BTreeSet<Toolset>) -> Tool {
        let annotations = match self.behaviour.effect {
            Effect::ReadOnly => ToolAnnotations::new().read_only(true),
            Effect::Writes {
                destructive,
                idempotent,
            } => ToolAnnotations::new()
                .read_only(false)
                .destructive(destructive)
                .idempotent(idempotent),
        }
        .open_world(self.behaviour.open_world);
        let mut schema = (self.input_schema)();
        for (name, toolset, widen) in WIDENED {
            if name == self.name && toolsets.contains(&toolset) {
                schema = widen(&schema);
            }
        }
        Tool::new(self.name, self.description.clone(), schema).with_annotations(annotations)
    }

    /// Whether the tool changes nothing.
    fn is_read_only(&self) -> bool {
        matches!(self.behaviour.effect, Effect::ReadOnly)
    }
}

/// How a tool's schema grows: the schema with the arguments added.
type Widen = fn(&JsonObject) -> Arc<JsonObject>;

/// Arguments a toolset adds to another toolset's tool when both are on: the tool, the
/// toolset, and how its schema grows (the handler refuses the argument otherwise).
const WIDENED: [(&str, Toolset, Widen); 1] = [(
    "chat_completion",
    Toolset::Rag,
    super::collections::chat_schema_with_collection,
)];

/// Every tool, in the order they are listed.
static REGISTRY: LazyLock<Vec<ToolEntry>> = LazyLock::new(|| {
    vec![
        super::models::list_models(),
        super::chat::chat_completion(),
        super::compare::compare_models(),
        super::conversations::delete_conversation(),
        super::subscriptions::list_subscriptions(),
        super::subscriptions::get_subscription(),
        super::delegate::delegate(),
        super::collections::list_collections(),
        super::collections::create_collection(),
        super::collections::delete_collection(),
        super::collections::add_to_collection(),
        super::collections::list_collection_items(),
        super::collections::delete_collection_item(),
        super::collections::search_collection(),
        super::retrieval::rerank(),
        super::retrieval::embed(),
        super::audio::speak(),
        super::audio::list_voices(),
        super::audio::transcribe(),
        super::images::generate_image(),
    ]
});

/// The tools of one selection: what `tools/list` shows and what calls can reach.
pub(super) struct Tools {
    toolsets: BTreeSet<Toolset>,
    entries: Vec<&'static ToolEntry>,
    listed: Vec<Tool>,
    instructions: String,
}

/// The tools of the first selection asked for: a process normally has only that one, and
/// finds it here without a lock (a session is made per request over HTTP).
static FIRST: OnceLock<(ToolSelection, Arc<Tools>)> = OnceLock::new();

/// The tools of any other selection (tests build apps with several), built once each.
static OTHERS: LazyLock<Mutex<HashMap<ToolSelection, Arc<Tools>>>> = LazyLock::new(Mutex::default);

impl Tools {
    /// The tools `selection` lists.
    pub(super) fn of(selection: &ToolSelection) -> Arc<Tools> {
        let (first, tools) =
            FIRST.get_or_init(|| (selection.clone(), Arc::new(Tools::build(selection))));
        if first == selection {
            return tools.clone();
        }
        let mut built = OTHERS.lock().unwrap_or_else(|e| e.into_inner());
        built
            .entry(selection.clone())
            .or_insert_with(|| Arc::new(Tools::build(selection)))
            .clone()
    }

    /// Whether a listed toolset makes media (speech, images), so `vultr://media/{id}` is
    /// worth a resource template.
    pub(super) fn makes_media(&self) -> bool {
        self.toolsets.contains(&Toolset::Audio) || self.toolsets.contains(&Toolset::Images)
    }

    fn build(selection: &ToolSelection) -> Tools {
        let entries: Vec<&'static ToolEntry> = REGISTRY
            .iter()
            .filter(|entry| selection.toolsets.contains(&entry.toolset))
            .filter(|entry| !selection.read_only || entry.is_read_only())
            .collect();
        Tools {
            toolsets: selection.toolsets.clone(),
            listed: entries
                .iter()
                .map(|entry| entry.tool(&selection.toolsets))
                .collect(),
            instructions: instructions(&entries),
            entries,
        }
    }

    /// The tool named `name`, if it is listed.
    pub(super) fn get(&self, name: &str) -> Option<&'static ToolEntry> {
        self.entries
            .iter()
            .copied()
            .find(|entry| entry.name == name)
    }

    /// Why the registered tool `name` is not listed here, when it is registered at all.
    pub(super) fn why_not_listed(&self, name: &str) -> Option<String> {
        let entry = REGISTRY.iter().find(|entry| entry.name == name)?;
        Some(if !self.toolsets.contains(&entry.toolset) {
            format!(
                "the tool {name} belongs to the toolset `{}`, which this server does not list ({} is {}); add it there to use {name}",
                entry.toolset,
                setting::TOOLSETS,
                self.toolsets
                    .iter()
                    .map(|t| t.name())
                    .collect::<Vec<_>>()
                    .join(","),
            )
        } else {
            format!(
                "the tool {name} changes things and this server lists only read-only tools ({} is on)",
                setting::READ_ONLY
            )
        })
    }

    /// The tools as `tools/list` shows them.
    pub(super) fn listed(&self) -> &[Tool] {
        &self.listed
    }

    /// The names of the tools listed, sorted (for a message naming them).
    pub(super) fn names(&self) -> String {
        let mut names: Vec<&str> = self.entries.iter().map(|entry| entry.name).collect();
        names.sort_unstable();
        names.join(", ")
    }

    /// What an agent reads once, at `initialize`: the guide of each tool listed.
    pub(super) fn instructions(&self) -> &str {
        &self.instructions
    }
}

/// The instructions for `entries`.
fn instructions(entries: &[&ToolEntry]) -> String {
    let mut text = String::from("Delegate work to models hosted on Vultr Serverless Inference.\n");
    for entry in entries {
        text.push_str(&entry.guide);
    }
    if entries.is_empty() {
        text.push_str(
            "No tools are listed: the server's toolsets and read-only mode leave none.\n",
        );
    }
    text.push_str("Errors come back as tool results with isError and say what to change.");
    text
}

/// The result of a call stopped before it finished: the one place it is written.
pub(super) fn cancelled() -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text("cancelled")])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(toolsets: &[Toolset], read_only: bool) -> Vec<&'static str> {
        let tools = Tools::build(&ToolSelection {
            toolsets: toolsets.iter().copied().collect::<BTreeSet<_>>(),
            read_only,
        });
        tools.entries.iter().map(|entry| entry.name).collect()
    }

    #[test]
    fn each_toolset_lists_its_tools_in_registry_order() {
        let core = [
            "list_models",
            "chat_completion",
            "compare_models",
            "delete_conversation",
            "list_subscriptions",
            "get_subscription",
        ];
        assert_eq!(names(&[Toolset::Core], false), core);
        assert_eq!(names(&[Toolset::Delegate], false), ["delegate"]);
        let rag = [
            "list_collections",
            "create_collection",
            "delete_collection",
            "add_to_collection",
            "list_collection_items",
            "delete_collection_item",
            "search_collection",
        ];
        assert_eq!(names(&[Toolset::Rag], false), rag);
        assert_eq!(names(&[Toolset::Retrieval], false), ["rerank", "embed"]);
        let audio = ["speak", "list_voices", "transcribe"];
        assert_eq!(names(&[Toolset::Audio], false), audio);
        assert_eq!(names(&[Toolset::Images], false), ["generate_image"]);
        let mut all = core.to_vec();
        all.push("delegate");
        all.extend(rag);
        all.extend(["rerank", "embed"]);
        all.extend(audio);
        all.push("generate_image");
        assert_eq!(names(&Toolset::ALL, false), all);
    }

    #[test]
    fn read_only_lists_only_tools_that_change_nothing() {
        assert_eq!(
            names(&Toolset::ALL, true),
            [
                "list_models",
                "list_subscriptions",
                "get_subscription",
                "list_collections",
                "list_collection_items",
                "search_collection",
                "rerank",
                "embed",
                "list_voices",
                "transcribe"
            ]
        );
    }

    #[test]
    fn chat_completion_takes_a_collection_only_with_the_rag_toolset() {
        let chat_schema = |toolsets: &[Toolset]| {
            let tools = Tools::build(&ToolSelection {
                toolsets: toolsets.iter().copied().collect(),
                read_only: false,
            });
            let tool = tools
                .listed()
                .iter()
                .find(|t| t.name == "chat_completion")
                .unwrap();
            serde_json::Value::Object((*tool.input_schema).clone())
        };
        let core = chat_schema(&[Toolset::Core]);
        assert!(core["properties"].get("collection").is_none(), "{core}");
        let rag = chat_schema(&[Toolset::Core, Toolset::Rag]);
        assert_eq!(rag["properties"]["collection"]["type"], "string");
        let mut without = rag.clone();
        without["properties"]
            .as_object_mut()
            .unwrap()
            .remove("collection");
        assert_eq!(without, core, "nothing else changes");
    }

    #[test]
    fn names_are_unique_and_every_toolset_has_a_tool() {
        let mut seen = BTreeSet::new();
        for entry in REGISTRY.iter() {
            assert!(
                seen.insert(entry.name),
                "{} is registered twice",
                entry.name
            );
        }
        for toolset in Toolset::ALL {
            assert!(
                REGISTRY.iter().any(|entry| entry.toolset == toolset),
                "the toolset {toolset} has no tool"
            );
        }
    }

    #[test]
    fn the_instructions_name_exactly_the_tools_listed() {
        let read_only = Tools::build(&ToolSelection {
            toolsets: BTreeSet::from([Toolset::Core]),
            read_only: true,
        });
        let text = read_only.instructions();
        assert!(text.contains("- list_models:"), "{text}");
        assert!(!text.contains("chat_completion"), "{text}");
        assert!(!text.contains("delegate:"), "{text}");
        let everything = Tools::build(&ToolSelection {
            toolsets: Toolset::ALL.into_iter().collect(),
            read_only: false,
        });
        for entry in &everything.entries {
            assert!(
                everything
                    .instructions()
                    .contains(&format!("- {}", entry.name)),
                "the instructions lack {}",
                entry.name
            );
        }
    }
}
