# kiln's WASI platform module for CMake versions that do not know WASI (as wasi-sdk ships one).
#
# WASI is Unix-like (POSIX headers from wasi-libc), links executables with
# wasm-ld into `.wasm` files and has no shared libraries: CMake builds a
# `SHARED` library as a static one, with a warning, instead of failing to
# link it.
set(WASI 1)
set(UNIX 1)
set(CMAKE_EXECUTABLE_SUFFIX ".wasm")
set(CMAKE_STATIC_LIBRARY_PREFIX "lib")
set(CMAKE_STATIC_LIBRARY_SUFFIX ".a")
set(CMAKE_FIND_LIBRARY_PREFIXES "lib")
set(CMAKE_FIND_LIBRARY_SUFFIXES ".a")
set(CMAKE_DL_LIBS "")
set_property(GLOBAL PROPERTY TARGET_SUPPORTS_SHARED_LIBS FALSE)
