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
        "qidoRoot": "https://127.0.0.1:45889/dicom/ohifws-ohif-dicom/v2",
        "wadoRoot": "https://127.0.0.1:45889/dicom/ohifws-ohif-dicom/v2",
        "wadoUriRoot": "https://127.0.0.1:45889/dicom/ohifws-ohif-dicom/v2",
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
      "authority": "https://127.0.0.1:45889/31aa4f21-19ec-4fef-b090-3c9854fe88d8/v2.0/",
      "client_id": "f6868a85-b5a0-4819-83ff-188ce3f79139",
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
