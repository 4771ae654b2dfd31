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
        "qidoRoot": "https://127.0.0.1:45871/dicom/ohifws-ohif-dicom/v2",
        "wadoRoot": "https://127.0.0.1:45871/dicom/ohifws-ohif-dicom/v2",
        "wadoUriRoot": "https://127.0.0.1:45871/dicom/ohifws-ohif-dicom/v2",
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
      "authority": "https://127.0.0.1:45871/6261960c-52d2-4c9d-8289-d034ea738286/v2.0/",
      "client_id": "61ebc359-985e-4be5-bb1f-1071480fd3c5",
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
