//! {{name}}: a library component exporting `component:{{name}}/api` (see wit/world.wit).

wit_bindgen::generate!({ path: "wit", world: "{{name}}" });

struct Component;

impl exports::component::{{snake}}::api::Guest for Component {
    fn greet(name: String) -> String {
        format!("Hello, {name}!")
    }
}

export!(Component);
