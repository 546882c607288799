/* {{name}}: a WebAssembly command in C. Build it with `kiln build`. */
#include <stdio.h>

int main(int argc, char **argv) {
    const char *name = argc > 1 ? argv[1] : "world";
    printf("Hello, %s!\n", name);
    return 0;
}
