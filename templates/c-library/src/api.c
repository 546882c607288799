/* {{name}}: implements component:{{name}}/api from wit/world.wit. */
#include <stdio.h>
#include <stdlib.h>
#include "{{snake}}.h"

void exports_component_{{snake}}_api_greet({{snake}}_string_t *name, {{snake}}_string_t *ret) {
    size_t cap = name->len + 16;
    char *text = malloc(cap);
    int n = snprintf(text, cap, "Hello, %.*s!", (int)name->len, (const char *)name->ptr);
    ret->ptr = (uint8_t *)text;
    ret->len = n < 0 ? 0 : (size_t)n;
    {{snake}}_string_free(name);
}
