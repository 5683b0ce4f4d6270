# nasforge_warnings(target): the project's warning set; errors when NASFORGE_WERROR is on (CI).
function(nasforge_warnings target)
  if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
    target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic
                                             -Wnon-virtual-dtor -Wno-missing-field-initializers)
    if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
      target_compile_options(${target} PRIVATE -Wshadow=local)  # GCC's spelling; clang lacks it
      # GCC 12 reports false "may be used uninitialized" on std::variant<..., std::string>
      # moved through std::vector (GCC bug 105593 and relatives); Clang and ASan cover it.
      target_compile_options(${target} PRIVATE -Wno-maybe-uninitialized)
    endif()
    if(NASFORGE_WERROR)
      target_compile_options(${target} PRIVATE -Werror)
    endif()
  endif()
endfunction()
