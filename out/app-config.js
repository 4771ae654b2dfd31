/** Written by provision. Edit the plan file and run `provision ... apply` instead of editing this. */
window.config = {
  "routerBasename": "/",
  "showStudyList": true,
  "extensions": [],
  "modes": [],
  "maxNumberOfWebWorkers": 3,
  "showWarningMessageForCrossOrigin": true,
  "showCPUFallbackMessage": true,
  "showLoadingIndicator": true,
  "strictZSpacingForVolumeViewport": true,
  "investigationalUseDialog": {
    "option": "never"
  },
  "defaultDataSourceName": "dicomweb",
  "dataSources": [
    {
      "namespace": "@ohif/extension-default.dataSourcesModule.dicomweb",
      "sourceName": "dicomweb",
      "configuration": {
        "friendlyName": "Azure DICOM",
        "name": "dicomweb",
        "qidoRoot": "https://127.0.0.1:42589/dicom/ohifws-ohif-dicom/v2",
        "wadoRoot": "https://127.0.0.1:42589/dicom/ohifws-ohif-dicom/v2",
        "wadoUriRoot": "https://127.0.0.1:42589/dicom/ohifws-ohif-dicom/v2",
        "qidoSupportsIncludeField": true,
        "imageRendering": "wadors",
        "thumbnailRendering": "wadors",
        "enableStudyLazyLoad": true,
        "supportsFuzzyMatching": false,
        "supportsWildcard": false,
        "omitQuotationForMultipartRequest": true,
        "dicomUploadEnabled": true,
        "supportsStow": true,
        "singlepart": "bulkdata,video,pdf",
        "bulkDataURI": {
          "enabled": true,
          "relativeResolution": "studies"
        }
      }
    }
  ],
  "oidc": [
    {
      "authority": "https://127.0.0.1:42589/a4e3443b-c1f7-4a40-a691-d394f912f180/v2.0/",
      "client_id": "9bd11cab-4a57-4002-9fd1-34dcc176cddf",
      "redirect_uri": "http://localhost:3000/callback",
      "response_type": "code",
      "scope": "openid https://dicom.healthcareapis.azure.com/Dicom.ReadWrite",
      "loadUserInfo": false,
      "automaticSilentRenew": true,
      "revokeAccessTokenOnSignout": true,
      "post_logout_redirect_uri": "http://localhost:3000/"
    }
  ]
};
