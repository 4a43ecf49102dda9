# Fuzz targets of the extraction area (schemas/, extractors/, docproc/out): corpora in corpus/<name>/.
dp_add_fuzz(ex_json LIBS ex sc dpbase)
dp_add_fuzz(ex_html LIBS ex sc dpbase LibXml2::LibXml2)
dp_add_fuzz(ex_markdown LIBS ex sc dpbase LibXml2::LibXml2)
dp_add_fuzz(ex_olmocr LIBS dpout ex sc dpbase LibXml2::LibXml2)
dp_add_fuzz(dp_out LIBS dpout ex sc dpbase LibXml2::LibXml2 PkgConfig::JANSSON PkgConfig::LIBZIP)
