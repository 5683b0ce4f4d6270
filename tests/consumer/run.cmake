# Installs the build tree into a scratch prefix, then configures, builds and runs a tiny
# consumer project that finds it with find_package(nasforge), as a user's research code would.
set(prefix ${BUILD_DIR}/consumer-install)
set(cbuild ${BUILD_DIR}/consumer-build)
file(REMOVE_RECURSE ${prefix} ${cbuild})
execute_process(COMMAND ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix}
                RESULT_VARIABLE rc OUTPUT_QUIET)
if(rc)
  message(FATAL_ERROR "install failed (${rc})")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} -S ${SOURCE_DIR}/tests/consumer -B ${cbuild} -G ${GENERATOR}
                        -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_BUILD_TYPE=Release
                RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "configuring the consumer failed (${rc})")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} --build ${cbuild} RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "building the consumer failed (${rc})")
endif()
execute_process(COMMAND ${cbuild}/consumer ${prefix}/share/nasforge/search_spaces/nb201.json
                RESULT_VARIABLE rc OUTPUT_VARIABLE out)
message(STATUS "${out}")
if(rc OR NOT out MATCHES "15625")
  message(FATAL_ERROR "the consumer failed (${rc}): ${out}")
endif()
