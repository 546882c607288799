# kiln's CMake toolchain file for WASI; the compiler, target, sysroot and flags come from kiln's -D options.
#
# CMake finds `Platform/WASI.cmake` beside this file (CMake 3.25 ships
# none), as wasi-sdk's toolchain files do.
list(APPEND CMAKE_MODULE_PATH "${CMAKE_CURRENT_LIST_DIR}")

set(CMAKE_SYSTEM_NAME WASI)
set(CMAKE_SYSTEM_VERSION 1)
set(CMAKE_SYSTEM_PROCESSOR wasm32)

# Programs run on the build machine; libraries, headers and packages are
# the WASI sysroot's only.
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# Configure checks (`check_function_exists`, …) link with the WASI linker
# flags even in projects that ask for policies older than CMake 3.2.
set(CMAKE_POLICY_DEFAULT_CMP0056 NEW)
# try_compile and try_run see the same policy default.
set(CMAKE_POLICY_DEFAULT_CMP0066 NEW)
