//! The WIT world of a component or of a core module's embedded component type.
//!
//! It is read at interface level, with versions and function signatures.

use anyhow::{Context, Result, bail};
use serde::Serialize;
use wit_component::{DecodedWasm, WitPrinter};
use wit_parser::{Function as WitFunction, FunctionKind, Resolve, Type, WorldId, WorldKey};

/// The world a component implements.
#[derive(Debug, Clone, Serialize)]
pub struct World {
    /// The world's name, e.g. `root`.
    pub name: String,
    /// The package the world is declared in, e.g. `root:component`.
    pub package: Option<String>,
    /// What the component imports.
    pub imports: Vec<WorldItem>,
    /// What the component exports.
    pub exports: Vec<WorldItem>,
}

/// What an import or export is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WorldItemKind {
    /// A WIT interface.
    Interface,
    /// A bare function.
    Function,
    /// A type.
    Type,
}

/// One import or export of a world.
#[derive(Debug, Clone, Serialize)]
pub struct WorldItem {
    /// Interface, function or type.
    pub kind: WorldItemKind,
    /// The full name: `wasi:cli/environment@0.2.6` for a package interface,
    /// the plain name for inline interfaces, functions and types.
    pub name: String,
    /// `namespace:package` of an interface from a package.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
    /// The interface's name within its package.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    /// The package version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The functions of an interface, or the function itself.
    pub functions: Vec<Function>,
}

/// A function with its WIT signature.
#[derive(Debug, Clone, Serialize)]
pub struct Function {
    /// The name, e.g. `get-environment` or `[method]fields.get`.
    pub name: String,
    /// The WIT signature, e.g. `func(key: string) -> option<string>`.
    pub signature: String,
}

pub(crate) fn of_component(bytes: &[u8]) -> Result<World> {
    match wit_component::decode(bytes).context("failed to decode the component's WIT world")? {
        DecodedWasm::Component(resolve, world) => Ok(describe(&resolve, world)),
        DecodedWasm::WitPackage(..) => bail!("the binary is a WIT package, not a component"),
    }
}

pub(crate) fn of_core_module(bytes: &[u8]) -> Result<Option<World>> {
    let (_, bindgen) = wit_component::metadata::decode(bytes)
        .context("failed to read the module's `component-type` sections")?;
    let world = bindgen.world;
    Ok(Some(describe(&bindgen.resolve, world)))
}

pub(crate) fn wit_text(bytes: &[u8]) -> Result<String> {
    let decoded = wit_component::decode(bytes).context("failed to decode the WIT of the binary")?;
    let resolve = decoded.resolve();
    let main = decoded.package();
    let nested: Vec<_> = resolve
        .packages
        .iter()
        .map(|(id, _)| id)
        .filter(|id| *id != main)
        .collect();
    let mut printer = WitPrinter::default();
    printer.print(resolve, main, &nested)?;
    Ok(printer.output.to_string())
}

fn describe(resolve: &Resolve, id: WorldId) -> World {
    let world = &resolve.worlds[id];
    let package = world.package.map(|p| resolve.packages[p].name.to_string());
    let items = |map: &wit_parser::IndexMap<WorldKey, wit_parser::WorldItem>| {
        map.iter()
            .map(|(key, item)| world_item(resolve, key, item))
            .collect()
    };
    World {
        name: world.name.clone(),
        package,
        imports: items(&world.imports),
        exports: items(&world.exports),
    }
}

fn world_item(resolve: &Resolve, key: &WorldKey, item: &wit_parser::WorldItem) -> WorldItem {
    let name = resolve.name_world_key(key);
    match item {
        wit_parser::WorldItem::Interface { id, .. } => {
            let iface = &resolve.interfaces[*id];
            let pkg = iface.package.map(|p| &resolve.packages[p].name);
            let functions = iface
                .functions
                .values()
                .map(|f| function(resolve, f))
                .collect();
            WorldItem {
                kind: WorldItemKind::Interface,
                name,
                package: pkg.map(|p| format!("{}:{}", p.namespace, p.name)),
                interface: match key {
                    WorldKey::Interface(_) => iface.name.clone(),
                    WorldKey::Name(_) => None,
                },
                version: pkg.and_then(|p| p.version.as_ref().map(|v| v.to_string())),
                functions,
            }
        }
        wit_parser::WorldItem::Function(f) => WorldItem {
            kind: WorldItemKind::Function,
            name,
            package: None,
            interface: None,
            version: None,
            functions: vec![function(resolve, f)],
        },
        wit_parser::WorldItem::Type { .. } => WorldItem {
            kind: WorldItemKind::Type,
            name,
            package: None,
            interface: None,
            version: None,
            functions: Vec::new(),
        },
    }
}

fn type_name(resolve: &Resolve, ty: &Type) -> String {
    let mut printer = WitPrinter::default();
    match printer.print_type_name(resolve, ty) {
        Ok(()) => printer.output.to_string(),
        Err(_) => "<unknown>".to_string(),
    }
}

fn function(resolve: &Resolve, f: &WitFunction) -> Function {
    let is_async = matches!(
        f.kind,
        FunctionKind::AsyncFreestanding
            | FunctionKind::AsyncMethod(_)
            | FunctionKind::AsyncStatic(_)
    );
    // Methods take `self` implicitly in WIT text.
    let skip = usize::from(matches!(
        f.kind,
        FunctionKind::Method(_) | FunctionKind::AsyncMethod(_)
    ));
    let params = f
        .params
        .iter()
        .skip(skip)
        .map(|p| format!("{}: {}", p.name, type_name(resolve, &p.ty)))
        .collect::<Vec<_>>()
        .join(", ");
    let mut signature = format!("{}func({params})", if is_async { "async " } else { "" });
    if let Some(result) = &f.result {
        signature.push_str(" -> ");
        signature.push_str(&type_name(resolve, result));
    }
    Function {
        name: f.name.clone(),
        signature,
    }
}
