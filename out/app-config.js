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
        "qidoRoot": "https://127.0.0.1:40867/dicom/ohifws-ohif-dicom/v2",
        "wadoRoot": "https://127.0.0.1:40867/dicom/ohifws-ohif-dicom/v2",
        "wadoUriRoot": "https://127.0.0.1:40867/dicom/ohifws-ohif-dicom/v2",
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
      "authority": "https://127.0.0.1:40867/a4aef3a5-1623-485e-8416-194dc738f14e/v2.0/",
      "client_id": "6e162086-bcf4-442f-a3a3-2095765e975e",
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
