# Batch area (docs/batch.md): the resume journal, password files and shard manifests, which live
# on shared storage and may be torn or corrupted.
dp_add_fuzz(batch_journal LIBS dpbatch dpingest dpout ex sc vl dpbase PkgConfig::JANSSON)
target_include_directories(fuzz_batch_journal PRIVATE ${CMAKE_SOURCE_DIR}/extractors
                           ${CMAKE_SOURCE_DIR}/schemas ${CMAKE_SOURCE_DIR}/docproc/base)
