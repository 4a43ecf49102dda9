# Fuzz targets of the ingestion area (docproc/ingest and libvl's image preprocessing).
dp_add_fuzz(tiff LIBS dpingest)
dp_add_fuzz(image LIBS dpingest vl)
set_tests_properties(fuzz_tiff fuzz_image PROPERTIES TIMEOUT 120)
