// {{name}}: a library component in Go exporting component:{{name}}/api
// (wit/world.wit) through //go:wasmexport. Go libraries export functions
// of numbers and booleans.
package main

//go:wasmexport component:{{name}}/api@0.1.0#add
func add(a, b int32) int32 { return a + b }

func main() {}
