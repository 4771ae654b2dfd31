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
        "qidoRoot": "https://127.0.0.1:37999/dicom/ohifws-ohif-dicom/v2",
        "wadoRoot": "https://127.0.0.1:37999/dicom/ohifws-ohif-dicom/v2",
        "wadoUriRoot": "https://127.0.0.1:37999/dicom/ohifws-ohif-dicom/v2",
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
      "authority": "https://127.0.0.1:37999/886e480e-3e63-4083-a8eb-4e50a36b89e0/v2.0/",
      "client_id": "64f98832-15b0-4068-b92f-fd7bce4c8ad8",
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
