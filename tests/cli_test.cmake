# Runs EXE with ARGS (a ;-list) and checks its exit status (EXPECT_RC) and that stdout+stderr
# match REGEX. Used by the cli.* tests. CLEAN, when set, is removed first.
if(CLEAN)
  file(REMOVE_RECURSE ${CLEAN})  # a fresh output directory (no checkpoint to resume)
endif()
execute_process(COMMAND ${EXE} ${ARGS} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err
                TIMEOUT 60)
set(all "${out}${err}")
if(NOT rc STREQUAL "${EXPECT_RC}")
  message(FATAL_ERROR "expected exit status ${EXPECT_RC}, got ${rc}\n${all}")
endif()
if(NOT all MATCHES "${REGEX}")
  message(FATAL_ERROR "output does not match \"${REGEX}\":\n${all}")
endif()
if(EXPECT_RC STREQUAL "2")
  # Bad input: exactly one line of error, on stderr, nothing on stdout.
  string(STRIP "${err}" e)
  string(FIND "${e}" "\n" nl)
  if(NOT out STREQUAL "" OR NOT nl EQUAL -1)
    message(FATAL_ERROR "expected one error line on stderr and no stdout, got:\nstdout: ${out}\nstderr: ${err}")
  endif()
endif()
