"""Azure's DICOM data plane: each DICOM service's `serviceUrl` answers DICOMweb the way Azure's DICOM service does.

`{url}/dicom/{workspace}-{dicom}/v2/...` (and `/v1/...`) is forwarded to a real Orthanc with the DICOMweb
plugin, one Orthanc and one storage area per DICOM service, started on the first request
(`provision/sandbox/orthanc_pool.py`). In front of Orthanc these modules do what the Azure service does and
Orthanc does not:

- `auth.py`: authentication (a bearer token of the sandbox's Entra ID for the DICOM audience) and
  authorization from the role assignments in the world (data actions);
- `cors.py`: exactly the service's `corsConfiguration`, with ASP.NET Core's semantics;
- `qido.py`: the attributes the service can search on and QIDO's parameters;
- `matching.py`: QIDO matching the Azure way (exact, PN case- and accent-insensitive, fuzzy word prefix, no
  wildcards), applied to what Orthanc returns where Orthanc would compare wrongly;
- `stow.py`: STOW part by part (43264, 43265, 45070, 45071; 200/202/409) before Orthanc sees anything;
- `changefeed.py`: the change feed, a journal per service, states computed when read;
- `query_tags.py`: extended query tags and their operations;
- `endpoint.py`: the routes, Azure's answers where Orthanc differs (an empty search or an offset past the end
  is 204 with no body; `DELETE` of a study, series or instance is supported, 204);
- `errors.py`: the service's error answers.

Facts not confirmed against a live service are marked "unverified".
"""
